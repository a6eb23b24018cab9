//! Which processes a new cluster has, where each listens, and in which
//! site and zone each node stands; layouts that cannot work are refused
//! here, before anything is written, with what to change.
//!
//! Ports are handed out from the base port up: two per gateway (S3, then
//! admin) and a third (cluster) when the gateways form a metadata cluster,
//! then the witness's two (admin, cluster), then one per node. With the
//! defaults and eight nodes: gateway 1 on 7400 (S3) and 7401 (admin),
//! nodes 1 to 8 on 7402 to 7409.
//!
//! With `--service-hosts` (containers, one host name per process) every
//! process listens on all addresses at fixed ports instead (gateway S3 9000,
//! admin 9001, cluster 7000; node 7100 and its metrics 9101; witness admin
//! 9001, cluster 7000) and is reached at its name: `dc-a-gw-1`,
//! `dc-b-node-2`, `witness` (`gateway-1`, `node-2` without sites).
//!
//! Nodes go round the zones (node 1 in zone-1, node 2 in zone-2, …) and
//! zones round the sites, so every zone lies in one site and nodes spread
//! evenly over both. Gateways go round the sites.
//!
//! More than one gateway, or a witness, makes the gateways members of one
//! metadata cluster (member id = gateway number, the witness's the next).
//! With a witness every gateway and the witness vote; without one, the
//! gateways of the first site vote and the others are learners (the two
//! sites only topology: failing over to them takes `tessera admin failover`).

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
    /// First port: each gateway takes two (S3, admin) and one more in a
    /// metadata cluster, a witness two, then each node one
    #[arg(long, default_value_t = 7400)]
    pub base_port: u16,
    /// Add a witness: a metadata voter in a third place, so that either site
    /// alone keeps a quorum
    #[arg(long)]
    pub witness: bool,
    /// Name every process's host after it (dc-a-gw-1, dc-b-node-2, witness)
    /// and give each the same fixed ports, for containers (docker compose)
    #[arg(long)]
    pub service_hosts: bool,
    /// Disks per node
    #[arg(long, default_value_t = 1)]
    pub disks: usize,
    /// Erasure code data shards (k)
    #[arg(long, default_value_t = 4)]
    pub data_shards: u16,
    /// Erasure code parity shards (m)
    #[arg(long, default_value_t = 2)]
    pub parity_shards: u16,
    /// Every site keeps a whole k+m copy of every object (a site alone then
    /// serves everything with full redundancy; twice the raw space of one
    /// copy); needs k+m stores in each site
    #[arg(long)]
    pub site_copies: bool,
}

/// A gateway of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySlot {
    /// Its number, from 1 (also its metadata member id).
    pub id: usize,
    /// Its name: its files' names, and its host with `--service-hosts`.
    pub name: String,
    /// The site it stands in.
    pub site: Option<String>,
    /// Its S3 listener.
    pub listen: SocketAddr,
    /// Its admin listener.
    pub admin_listen: SocketAddr,
    /// Its place in the metadata cluster, if the gateways form one.
    pub member: Option<MemberSlot>,
}

/// A process's place in the metadata cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSlot {
    /// Its member id.
    pub id: u64,
    /// Where its cluster listener binds.
    pub listen: SocketAddr,
    /// Where the other members reach it.
    pub addr: String,
    /// Whether it votes.
    pub voter: bool,
}

/// The witness of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessSlot {
    /// Its name (`witness`).
    pub name: String,
    /// Its admin listener.
    pub admin_listen: SocketAddr,
    /// Its place in the metadata cluster.
    pub member: MemberSlot,
}

/// A storage node of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSlot {
    /// Its number, from 1.
    pub id: u64,
    /// Its name: its files' names, and its host with `--service-hosts`.
    pub name: String,
    /// Its node listener.
    pub listen: SocketAddr,
    /// Where gateways reach it.
    pub addr: String,
    /// Its metrics listener (with `--service-hosts`).
    pub metrics_listen: Option<SocketAddr>,
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
    /// The witness, if asked for.
    pub witness: Option<WitnessSlot>,
    /// The storage nodes.
    pub nodes: Vec<NodeSlot>,
    /// Disks per node.
    pub disks: usize,
    /// The erasure code.
    pub geometry: Geometry,
    /// Whether processes run in containers named after them.
    pub service_hosts: bool,
    /// The sites that each keep a copy of every segment (empty: one copy
    /// spread over the sites).
    pub site_copies: Vec<String>,
}

impl Layout {
    /// The metadata cluster's founding members: id, address, site, voter.
    pub fn members(&self) -> Vec<(u64, String, Option<String>, bool)> {
        self.gateways
            .iter()
            .filter_map(|g| g.member.as_ref().map(|m| (m, g.site.clone())))
            .chain(
                self.witness
                    .iter()
                    .map(|w| (&w.member, Some(w.name.clone()))),
            )
            .map(|(m, site)| (m.id, m.addr.clone(), site, m.voter))
            .collect()
    }
}

/// Fixed container ports of `--service-hosts`.
mod service_ports {
    pub const S3: u16 = 9000;
    pub const ADMIN: u16 = 9001;
    pub const CLUSTER: u16 = 7000;
    pub const NODE: u16 = 7100;
    pub const NODE_METRICS: u16 = 9101;
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
    /// Two voters or more and no witness, all in one site out of several:
    /// nothing to say here; but an even number of voters with no witness
    /// cannot lose one of them.
    #[error(
        "{voters} voting gateways and no witness: losing one of them stops every write. \
         Add --witness, or use an odd number of gateways in the first site"
    )]
    EvenVoters {
        /// Voters the layout would have.
        voters: usize,
    },
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
    /// `--site-copies` with fewer than two sites.
    #[error("--site-copies keeps a copy on each site: give two sites or more with --sites")]
    SiteCopiesOneSite,
    /// A site too small for a whole copy.
    #[error(
        "--site-copies: {sites} sites of {nodes} nodes × {disks} disks leave {per_site} stores in \
         the smallest site, fewer than the {width} shards of a copy: use --nodes {nodes_needed} \
         or more, or more --disks"
    )]
    SiteCopiesTooSmall {
        /// Sites asked for.
        sites: usize,
        /// Nodes asked for.
        nodes: usize,
        /// Disks per node.
        disks: usize,
        /// Stores of the smallest site.
        per_site: usize,
        /// k + m.
        width: usize,
        /// Nodes needed with these disks.
        nodes_needed: usize,
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
    let clustered = req.gateways > 1 || req.witness;
    let mut ports = ports(req, clustered)?.into_iter();
    let mut next_port = |fixed: u16| {
        if req.service_hosts {
            fixed
        } else {
            ports.next().unwrap_or(fixed)
        }
    };
    let host = if req.service_hosts {
        IpAddr::from([0, 0, 0, 0])
    } else {
        req.host
    };
    let reach = |name: &str, listen: SocketAddr| {
        if req.service_hosts {
            format!("{name}:{}", listen.port())
        } else {
            listen.to_string()
        }
    };
    let site_of = |i: usize| req.sites.get(i % req.sites.len().max(1)).cloned();
    let first_site = req.sites.first().cloned();
    let mut names = Names::new(req.service_hosts);
    let mut gateways = Vec::new();
    for id in 1..=req.gateways {
        let site = site_of(id - 1);
        let name = names.next(&site, "gw", format!("gateway-{id}"));
        let listen = SocketAddr::new(host, next_port(service_ports::S3));
        let admin_listen = SocketAddr::new(host, next_port(service_ports::ADMIN));
        let member = clustered.then(|| {
            let listen = SocketAddr::new(host, next_port(service_ports::CLUSTER));
            MemberSlot {
                id: id as u64,
                listen,
                addr: reach(&name, listen),
                voter: req.witness || req.sites.len() < 2 || site == first_site,
            }
        });
        gateways.push(GatewaySlot {
            id,
            name,
            site,
            listen,
            admin_listen,
            member,
        });
    }
    let witness = req.witness.then(|| {
        let name = "witness".to_owned();
        let admin_listen = SocketAddr::new(host, next_port(service_ports::ADMIN));
        let listen = SocketAddr::new(host, next_port(service_ports::CLUSTER));
        WitnessSlot {
            member: MemberSlot {
                id: req.gateways as u64 + 1,
                listen,
                addr: reach(&name, listen),
                voter: true,
            },
            name,
            admin_listen,
        }
    });
    let voters = gateways
        .iter()
        .filter(|g| g.member.as_ref().is_some_and(|m| m.voter))
        .count();
    if clustered && !req.witness && voters % 2 == 0 {
        return Err(LayoutError::EvenVoters { voters });
    }
    let zones = req.zones.unwrap_or(0);
    let mut nodes = Vec::new();
    for i in 0..req.nodes {
        let zone = (zones > 0).then_some(i % zones.max(1));
        let site = match zone {
            Some(z) => site_of(z),
            None => site_of(i),
        };
        let name = names.next(&site, "node", format!("node-{}", i + 1));
        let listen = SocketAddr::new(host, next_port(service_ports::NODE));
        nodes.push(NodeSlot {
            id: i as u64 + 1,
            addr: reach(&name, listen),
            name,
            listen,
            metrics_listen: req
                .service_hosts
                .then(|| SocketAddr::new(host, service_ports::NODE_METRICS)),
            site,
            zone: zone.map(|z| format!("zone-{}", z + 1)),
        });
    }
    Ok(Layout {
        gateways,
        witness,
        nodes,
        disks: req.disks,
        geometry,
        service_hosts: req.service_hosts,
        site_copies: if req.site_copies {
            req.sites.clone()
        } else {
            Vec::new()
        },
    })
}

/// Names processes: `plain` (gateway-1, node-3), or with `--service-hosts`
/// and a site, the site and a number counted per site and kind.
struct Names {
    service_hosts: bool,
    counts: std::collections::BTreeMap<(String, &'static str), usize>,
}

impl Names {
    fn new(service_hosts: bool) -> Names {
        Names {
            service_hosts,
            counts: std::collections::BTreeMap::new(),
        }
    }

    fn next(&mut self, site: &Option<String>, kind: &'static str, plain: String) -> String {
        match site {
            Some(site) if self.service_hosts => {
                let n = self.counts.entry((site.clone(), kind)).or_default();
                *n += 1;
                format!("{site}-{kind}-{n}")
            }
            _ => plain,
        }
    }
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
    if req.gateways == 0 {
        return Err(LayoutError::NoGateways);
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
    if req.site_copies {
        let width = geometry.total_shards();
        if sites < 2 {
            return Err(LayoutError::SiteCopiesOneSite);
        }
        // Nodes go round the sites: the smallest gets the floor.
        let per_site = req.nodes / sites * req.disks;
        if per_site < width {
            return Err(LayoutError::SiteCopiesTooSmall {
                sites,
                nodes: req.nodes,
                disks: req.disks,
                per_site,
                width,
                nodes_needed: width.div_ceil(req.disks) * sites,
            });
        }
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

/// The ports of the layout, in order: gateways' (S3, admin and, in a
/// metadata cluster, cluster), the witness's (admin, cluster), then nodes'.
fn ports(req: &LayoutRequest, clustered: bool) -> Result<Vec<u16>, LayoutError> {
    let per_gateway = if clustered { 3 } else { 2 };
    let needed = per_gateway * req.gateways + 2 * usize::from(req.witness) + req.nodes;
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
            witness: false,
            service_hosts: false,
            site_copies: false,
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
        // A copy per site needs k + m stores in the smallest site.
        let copies = |nodes: usize, sites: &[&str]| LayoutRequest {
            sites: sites.iter().map(|s| (*s).to_owned()).collect(),
            site_copies: true,
            ..request(nodes)
        };
        assert!(matches!(
            refusal(copies(11, &["dc-a", "dc-b"])),
            LayoutError::SiteCopiesTooSmall {
                per_site: 5,
                width: 6,
                nodes_needed: 12,
                ..
            }
        ));
        assert!(matches!(
            refusal(copies(12, &["dc-a"])),
            LayoutError::SiteCopiesOneSite
        ));
        assert_eq!(
            plan(&copies(12, &["dc-a", "dc-b"])).unwrap().site_copies,
            ["dc-a", "dc-b"]
        );
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
            LayoutError::EvenVoters { voters: 2 }
        );
    }

    #[test]
    fn gateways_form_a_metadata_cluster_with_a_witness() {
        let layout = plan(&LayoutRequest {
            gateways: 4,
            sites: vec!["dc-a".into(), "dc-b".into()],
            witness: true,
            ..request(6)
        })
        .unwrap();
        let ports: Vec<(u16, u16, u16)> = layout
            .gateways
            .iter()
            .map(|g| {
                let m = g.member.as_ref().unwrap();
                (g.listen.port(), g.admin_listen.port(), m.listen.port())
            })
            .collect();
        assert_eq!(ports[0], (7400, 7401, 7402));
        assert_eq!(ports[3], (7409, 7410, 7411));
        let witness = layout.witness.as_ref().unwrap();
        assert_eq!(witness.admin_listen.port(), 7412);
        assert_eq!(witness.member.addr, "127.0.0.1:7413");
        assert_eq!(witness.member.id, 5);
        assert_eq!(layout.nodes[0].listen.port(), 7414);
        let members = layout.members();
        assert_eq!(members.len(), 5);
        assert!(members.iter().all(|(_, _, _, voter)| *voter));
        let sites: Vec<_> = layout.gateways.iter().map(|g| g.site.clone()).collect();
        assert_eq!(
            sites,
            [
                Some("dc-a".into()),
                Some("dc-b".into()),
                Some("dc-a".into()),
                Some("dc-b".into())
            ]
        );
    }

    #[test]
    fn without_a_witness_the_second_site_learns() {
        let layout = plan(&LayoutRequest {
            gateways: 2,
            sites: vec!["dc-a".into(), "dc-b".into()],
            ..request(6)
        })
        .unwrap();
        let voters: Vec<bool> = layout
            .gateways
            .iter()
            .map(|g| g.member.as_ref().unwrap().voter)
            .collect();
        assert_eq!(voters, [true, false]);
    }

    #[test]
    fn service_hosts_are_named_after_their_process() {
        let layout = plan(&LayoutRequest {
            gateways: 4,
            sites: vec!["dc-a".into(), "dc-b".into()],
            witness: true,
            service_hosts: true,
            ..request(6)
        })
        .unwrap();
        let names: Vec<&str> = layout.gateways.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["dc-a-gw-1", "dc-b-gw-1", "dc-a-gw-2", "dc-b-gw-2"]);
        let nodes: Vec<&str> = layout.nodes.iter().map(|n| n.addr.as_str()).collect();
        assert_eq!(
            nodes,
            [
                "dc-a-node-1:7100",
                "dc-b-node-1:7100",
                "dc-a-node-2:7100",
                "dc-b-node-2:7100",
                "dc-a-node-3:7100",
                "dc-b-node-3:7100"
            ]
        );
        let gw = &layout.gateways[1];
        assert_eq!(gw.listen, SocketAddr::from(([0, 0, 0, 0], 9000)));
        assert_eq!(gw.member.as_ref().unwrap().addr, "dc-b-gw-1:7000");
        assert_eq!(layout.witness.unwrap().member.addr, "witness:7000");
    }
}
