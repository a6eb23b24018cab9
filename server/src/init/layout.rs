//! Which processes a new cluster has, where each listens, and in which
//! site and zone each node stands; layouts that cannot work are refused
//! here, before anything is written, with what to change.
//!
//! Ports are handed out from the base port up: two per gateway (S3, then
//! admin), then one per node. With the defaults and eight nodes: gateway 1
//! on 7400 (S3) and 7401 (admin), nodes 1 to 8 on 7402 to 7409.
//!
//! Nodes go round the zones (node 1 in zone-1, node 2 in zone-2, …) and
//! zones round the sites, so every zone lies in one site and nodes spread
//! evenly over both.

use std::net::{IpAddr, SocketAddr};

use tessera_storage::Geometry;

/// What the operator asked for (the `tessera init` flags).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LayoutRequest {
    /// Storage nodes
    #[arg(long)]
    pub nodes: usize,
    /// Gateways (S3 endpoints)
    #[arg(long, default_value_t = 1)]
    pub gateways: usize,
    /// Sites (datacenters), comma-separated names: zones, or else nodes, go round them
    #[arg(long, value_delimiter = ',')]
    pub sites: Vec<String>,
    /// Failure zones (named zone-1 …): nodes go round them
    #[arg(long)]
    pub zones: Option<usize>,
    /// IP address every process listens on
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// First port: each gateway takes two (S3, admin), then each node one
    #[arg(long, default_value_t = 7400)]
    pub base_port: u16,
    /// Disks per node
    #[arg(long, default_value_t = 1)]
    pub disks: usize,
    /// Erasure code data shards (k)
    #[arg(long, default_value_t = 4)]
    pub data_shards: u16,
    /// Erasure code parity shards (m)
    #[arg(long, default_value_t = 2)]
    pub parity_shards: u16,
}

/// A gateway of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySlot {
    /// Its number, from 1.
    pub id: usize,
    /// Its S3 listener.
    pub listen: SocketAddr,
    /// Its admin listener.
    pub admin_listen: SocketAddr,
}

/// A storage node of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSlot {
    /// Its number, from 1.
    pub id: u64,
    /// Its node listener.
    pub listen: SocketAddr,
    /// The site it stands in.
    pub site: Option<String>,
    /// The failure zone it stands in.
    pub zone: Option<String>,
}

/// A checked layout: every process, with its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The gateways.
    pub gateways: Vec<GatewaySlot>,
    /// The storage nodes.
    pub nodes: Vec<NodeSlot>,
    /// Disks per node.
    pub disks: usize,
    /// The erasure code.
    pub geometry: Geometry,
}

/// Why a layout cannot work; each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// `--nodes 0`.
    #[error("a cluster needs storage nodes: use --nodes 1 or more")]
    NoNodes,
    /// `--disks 0`.
    #[error("a node needs a disk: use --disks 1 or more")]
    NoDisks,
    /// `--gateways 0`.
    #[error("a cluster needs a gateway: use --gateways 1")]
    NoGateways,
    /// More than one gateway.
    #[error(
        "--gateways {0}: gateways cannot share storage nodes yet (each keeps its own metadata, \
         and would remove the others' shards as orphans); use --gateways 1"
    )]
    SharedNodes(usize),
    /// The erasure code itself is invalid.
    #[error("erasure code {k}+{m}: {why}; change --data-shards or --parity-shards")]
    Geometry {
        /// Data shards.
        k: u16,
        /// Parity shards.
        m: u16,
        /// What is wrong with it.
        why: String,
    },
    /// Fewer stores than shards per segment.
    #[error(
        "{nodes} nodes × {disks} disks = {stores} stores cannot hold the {width} shards of a \
         {k}+{m} segment on distinct stores: use --nodes {nodes_needed} or more, --disks \
         {disks_needed} or more, or fewer --data-shards/--parity-shards"
    )]
    TooFewStores {
        /// Nodes asked for.
        nodes: usize,
        /// Disks per node.
        disks: usize,
        /// nodes × disks.
        stores: usize,
        /// k + m.
        width: usize,
        /// Data shards.
        k: u16,
        /// Parity shards.
        m: u16,
        /// Nodes needed with these disks.
        nodes_needed: usize,
        /// Disks needed with these nodes.
        disks_needed: usize,
    },
    /// `--zones 0`.
    #[error("--zones 0: use --zones 1 or more, or leave it out")]
    NoZones,
    /// More zones (or sites) than nodes.
    #[error("{count} {what} for {nodes} nodes would leave some empty: use at most {nodes} {what}")]
    EmptyGroups {
        /// "zones" or "sites".
        what: &'static str,
        /// How many were asked for.
        count: usize,
        /// Nodes asked for.
        nodes: usize,
    },
    /// A zone would hold more shards of a segment than there is parity.
    #[error(
        "{k}+{m} over {zones} zones puts {per_zone} shards of a segment in one zone, more than \
         its {m} parity shards: losing that zone would lose data. Use --zones {zones_needed} or \
         more, or more --parity-shards"
    )]
    ZonesTooFew {
        /// Data shards.
        k: u16,
        /// Parity shards.
        m: u16,
        /// Zones asked for.
        zones: usize,
        /// Shards the fullest zone holds at best.
        per_zone: usize,
        /// Zones needed with this parity.
        zones_needed: usize,
    },
    /// More sites than zones.
    #[error(
        "{sites} sites need a zone each at least (a zone lies in one site): use --zones {sites} or more"
    )]
    SitesWithoutZones {
        /// Sites asked for.
        sites: usize,
    },
    /// A site name is empty or given twice.
    #[error("--sites {0:?}: site names must be distinct and not empty")]
    SiteNames(String),
    /// The ports run past 65535 (or start at 0).
    #[error(
        "{needed} ports from --base-port {base} do not fit below 65536: use --base-port \
         between 1 and {highest_base}"
    )]
    Ports {
        /// The base port asked for.
        base: u16,
        /// Ports the layout needs.
        needed: usize,
        /// The highest base port that fits.
        highest_base: usize,
    },
}

/// Checks `req` and lays the cluster out.
pub fn plan(req: &LayoutRequest) -> Result<Layout, LayoutError> {
    let geometry = check_counts(req)?;
    check_sites_and_zones(req, &geometry)?;
    let ports = ports(req)?;
    let gateways = (1..=req.gateways)
        .map(|id| GatewaySlot {
            id,
            listen: SocketAddr::new(req.host, ports[2 * (id - 1)]),
            admin_listen: SocketAddr::new(req.host, ports[2 * (id - 1) + 1]),
        })
        .collect();
    let zones = req.zones.unwrap_or(0);
    let nodes = (0..req.nodes)
        .map(|i| {
            let zone = (zones > 0).then_some(i % zones.max(1));
            let site = match zone {
                Some(z) => z % req.sites.len().max(1),
                None => i % req.sites.len().max(1),
            };
            NodeSlot {
                id: i as u64 + 1,
                listen: SocketAddr::new(req.host, ports[2 * req.gateways + i]),
                site: req.sites.get(site).cloned(),
                zone: zone.map(|z| format!("zone-{}", z + 1)),
            }
        })
        .collect();
    Ok(Layout {
        gateways,
        nodes,
        disks: req.disks,
        geometry,
    })
}

/// Counts of processes, disks and shards.
fn check_counts(req: &LayoutRequest) -> Result<Geometry, LayoutError> {
    let (k, m) = (req.data_shards, req.parity_shards);
    if req.nodes == 0 {
        return Err(LayoutError::NoNodes);
    }
    if req.disks == 0 {
        return Err(LayoutError::NoDisks);
    }
    match req.gateways {
        0 => return Err(LayoutError::NoGateways),
        1 => {}
        n => return Err(LayoutError::SharedNodes(n)),
    }
    let geometry =
        Geometry::new(k, m, Geometry::default().block_size).map_err(|e| LayoutError::Geometry {
            k,
            m,
            why: e.to_string(),
        })?;
    let width = geometry.total_shards();
    let stores = req.nodes.saturating_mul(req.disks);
    if stores < width {
        return Err(LayoutError::TooFewStores {
            nodes: req.nodes,
            disks: req.disks,
            stores,
            width,
            k,
            m,
            nodes_needed: width.div_ceil(req.disks),
            disks_needed: width.div_ceil(req.nodes),
        });
    }
    Ok(geometry)
}

/// Sites and zones: names, counts, and that losing a zone loses no data.
fn check_sites_and_zones(req: &LayoutRequest, geometry: &Geometry) -> Result<(), LayoutError> {
    let mut names = req.sites.clone();
    names.sort();
    names.dedup();
    if names.len() != req.sites.len() || names.iter().any(String::is_empty) {
        return Err(LayoutError::SiteNames(req.sites.join(",")));
    }
    let sites = req.sites.len();
    if sites > req.nodes {
        return Err(LayoutError::EmptyGroups {
            what: "sites",
            count: sites,
            nodes: req.nodes,
        });
    }
    let Some(zones) = req.zones else {
        return Ok(());
    };
    if zones == 0 {
        return Err(LayoutError::NoZones);
    }
    if zones > req.nodes {
        return Err(LayoutError::EmptyGroups {
            what: "zones",
            count: zones,
            nodes: req.nodes,
        });
    }
    if sites > zones {
        return Err(LayoutError::SitesWithoutZones { sites });
    }
    let width = geometry.total_shards();
    let m = usize::from(geometry.parity_shards);
    let per_zone = width.div_ceil(zones);
    if per_zone > m {
        return Err(LayoutError::ZonesTooFew {
            k: geometry.data_shards,
            m: geometry.parity_shards,
            zones,
            per_zone,
            zones_needed: width.div_ceil(m),
        });
    }
    Ok(())
}

/// The ports of the layout, in order: gateways' (S3, admin), then nodes'.
fn ports(req: &LayoutRequest) -> Result<Vec<u16>, LayoutError> {
    let needed = 2 * req.gateways + req.nodes;
    let last = u16::try_from(usize::from(req.base_port) + needed - 1);
    match last {
        Ok(last) if req.base_port > 0 => Ok((req.base_port..=last).collect()),
        _ => Err(LayoutError::Ports {
            base: req.base_port,
            needed,
            highest_base: (usize::from(u16::MAX) + 1).saturating_sub(needed),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn request(nodes: usize) -> LayoutRequest {
        LayoutRequest {
            nodes,
            gateways: 1,
            sites: Vec::new(),
            zones: None,
            host: IpAddr::from([127, 0, 0, 1]),
            base_port: 7400,
            disks: 1,
            data_shards: 4,
            parity_shards: 2,
        }
    }

    #[test]
    fn ports_go_to_the_gateway_then_the_nodes() {
        let layout = plan(&request(8)).unwrap();
        assert_eq!(layout.gateways[0].listen.port(), 7400);
        assert_eq!(layout.gateways[0].admin_listen.port(), 7401);
        let ports: Vec<u16> = layout.nodes.iter().map(|n| n.listen.port()).collect();
        assert_eq!(ports, (7402..=7409).collect::<Vec<_>>());
        assert_eq!(layout.nodes[7].id, 8);
    }

    #[test]
    fn nodes_spread_over_zones_and_zones_over_sites() {
        let layout = plan(&LayoutRequest {
            sites: vec!["dc-a".into(), "dc-b".into()],
            zones: Some(4),
            ..request(8)
        })
        .unwrap();
        let placed: Vec<(&str, &str)> = layout
            .nodes
            .iter()
            .map(|n| (n.site.as_deref().unwrap(), n.zone.as_deref().unwrap()))
            .collect();
        assert_eq!(
            placed,
            [
                ("dc-a", "zone-1"),
                ("dc-b", "zone-2"),
                ("dc-a", "zone-3"),
                ("dc-b", "zone-4"),
                ("dc-a", "zone-1"),
                ("dc-b", "zone-2"),
                ("dc-a", "zone-3"),
                ("dc-b", "zone-4"),
            ]
        );
        let sites_only = plan(&LayoutRequest {
            sites: vec!["dc-a".into(), "dc-b".into()],
            disks: 2,
            ..request(3)
        })
        .unwrap();
        let sites: Vec<_> = sites_only.nodes.iter().map(|n| n.site.clone()).collect();
        assert_eq!(
            sites,
            [
                Some("dc-a".into()),
                Some("dc-b".into()),
                Some("dc-a".into())
            ]
        );
        assert!(sites_only.nodes.iter().all(|n| n.zone.is_none()));
    }

    #[test]
    fn impossible_layouts_are_refused() {
        let refusal = |req: LayoutRequest| plan(&req).unwrap_err();
        assert_eq!(refusal(request(0)), LayoutError::NoNodes);
        assert!(matches!(
            refusal(request(5)),
            LayoutError::TooFewStores {
                nodes_needed: 6,
                disks_needed: 2,
                ..
            }
        ));
        assert!(matches!(
            refusal(LayoutRequest {
                zones: Some(2),
                ..request(6)
            }),
            LayoutError::ZonesTooFew {
                per_zone: 3,
                zones_needed: 3,
                ..
            }
        ));
        assert!(
            plan(&LayoutRequest {
                zones: Some(3),
                ..request(6)
            })
            .is_ok()
        );
        assert!(matches!(
            refusal(LayoutRequest {
                base_port: 65530,
                ..request(6)
            }),
            LayoutError::Ports {
                highest_base: 65528,
                ..
            }
        ));
        assert!(
            plan(&LayoutRequest {
                base_port: 65528,
                ..request(6)
            })
            .is_ok()
        );
        assert!(matches!(
            refusal(LayoutRequest {
                zones: Some(7),
                ..request(6)
            }),
            LayoutError::EmptyGroups { what: "zones", .. }
        ));
        assert!(matches!(
            refusal(LayoutRequest {
                sites: vec!["a".into(), "a".into()],
                ..request(6)
            }),
            LayoutError::SiteNames(_)
        ));
        assert!(matches!(
            refusal(LayoutRequest {
                parity_shards: 0,
                ..request(6)
            }),
            LayoutError::Geometry { .. }
        ));
        assert_eq!(
            refusal(LayoutRequest {
                gateways: 2,
                ..request(6)
            }),
            LayoutError::SharedNodes(2)
        );
    }
}
