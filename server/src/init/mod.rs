//! `tessera init`: everything a new cluster needs, written into one
//! directory, laid out by [`layout`]:
//!
//! ```text
//! DIR/ca.pem, DIR/ca.key            the cluster CA (keep ca.key offline)
//! DIR/node-N.toml, .pem, .key       each storage node's config, certificate and key
//! DIR/gateway-N.toml, .pem, .key    each gateway's
//! DIR/data/node-N/                  each node's data dir
//! DIR/data/gateway-N/               each gateway's, holding the cluster's master key
//!                                   and root credentials (the same in every gateway)
//! ```
//!
//! Paths in the configs are absolute; keys, `master.key` and `credentials`
//! are owner-only (0600), directories 0700. Nothing is ever overwritten:
//! `DIR` must be missing or empty.

pub mod layout;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tessera_storage::MasterKey;

use crate::cluster_ca::{self, CA_CERT_FILE, CA_KEY_FILE};
use crate::config::{ClusterTlsFiles, ConfigLayer, MemberEntry, NodeEntry, Role};
use crate::datadir::{CREDENTIALS_FILE, Credentials, DataDir, write_new_file};
use crate::storage_node::{self, NodeConfig};

pub use layout::{Layout, LayoutError, LayoutRequest};

/// A cluster `tessera init` wrote.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The directory holding it all (absolute).
    pub dir: PathBuf,
    /// Its processes.
    pub layout: Layout,
    /// The root access key every gateway starts with.
    pub credentials: Credentials,
}

/// The name (and certificate common name) of gateway `id`.
pub fn gateway_name(id: usize) -> String {
    format!("gateway-{id}")
}

/// Where container paths start with `--service-hosts`: the cluster
/// directory is mounted at `/config`, each process's data dir at `/data`.
const CONTAINER_CONFIG_DIR: &str = "/config";
/// See [`CONTAINER_CONFIG_DIR`].
const CONTAINER_DATA_DIR: &str = "/data";

/// Checks `request` and writes the cluster into `out`, which must be
/// missing or empty.
pub fn run(out: &Path, request: &LayoutRequest) -> Result<Cluster> {
    let layout = layout::plan(request)?;
    let dir = create_out_dir(out)?;
    let ca = cluster_ca::create(&dir)?;
    let paths = Paths {
        dir: dir.clone(),
        in_containers: layout.service_hosts,
    };
    let identity = |member: &str, also: &[String], stem: &str| -> Result<ClusterTlsFiles> {
        let files = cluster_ca::issue(&ca, member, also, stem, &dir)?;
        Ok(ClusterTlsFiles {
            ca: paths.seen(&dir.join(CA_CERT_FILE)),
            cert: paths.seen(&files.cert),
            key: paths.seen(&files.key),
        })
    };
    for node in &layout.nodes {
        let tls = identity(&storage_node::member_name(node.id), &[], &node.name)?;
        let config = NodeConfig {
            id: node.id,
            listen: node.listen,
            data_dir: paths.data_dir(&data_dir(&dir, &node.name)?),
            disks: layout.disks,
            site: node.site.clone(),
            zone: node.zone.clone(),
            cluster_ca: tls.ca,
            cluster_cert: tls.cert,
            cluster_key: tls.key,
            scrub_interval_days: None,
            scrub_rate_mib: None,
            metrics_listen: node.metrics_listen,
            otlp_endpoint: None,
            otlp_queue_spans: None,
        };
        write_config(&dir, &node.name, &config)?;
    }
    let nodes: Vec<NodeEntry> = layout
        .nodes
        .iter()
        .map(|node| NodeEntry {
            id: node.id,
            addr: node.addr.clone(),
            site: node.site.clone(),
            zone: node.zone.clone(),
        })
        .collect();
    let members: Vec<MemberEntry> = layout
        .members()
        .into_iter()
        .map(|(id, addr, site, voter)| MemberEntry {
            id,
            addr,
            site,
            voter,
        })
        .collect();
    let members = (!members.is_empty()).then_some(members);
    let master_key = MasterKey::generate();
    let credentials = Credentials::generate();
    for gateway in &layout.gateways {
        let also: Vec<String> = gateway
            .member
            .iter()
            .map(|m| tessera_raft::node::member_name(m.id))
            .collect();
        let tls = identity(&gateway_name(gateway.id), &also, &gateway.name)?;
        let data = data_dir(&dir, &gateway.name)?;
        data.save_master_key(&master_key)?;
        data.save_root_credentials(&credentials)?;
        let config = ConfigLayer {
            data_dir: Some(paths.data_dir(&data)),
            listen: Some(gateway.listen),
            admin_listen: Some(gateway.admin_listen),
            data_shards: Some(layout.geometry.data_shards),
            parity_shards: Some(layout.geometry.parity_shards),
            cluster_ca: Some(tls.ca),
            cluster_cert: Some(tls.cert),
            cluster_key: Some(tls.key),
            nodes: Some(nodes.clone()),
            site_copies: (!layout.site_copies.is_empty()).then(|| layout.site_copies.clone()),
            member_id: gateway.member.as_ref().map(|m| m.id),
            site: gateway.site.clone(),
            cluster_listen: gateway.member.as_ref().map(|m| m.listen),
            members: members.clone(),
            ..ConfigLayer::default()
        };
        write_config(&dir, &gateway.name, &config)?;
    }
    if let Some(witness) = &layout.witness {
        let tls = identity(
            &witness.name,
            &[tessera_raft::node::member_name(witness.member.id)],
            &witness.name,
        )?;
        let data = data_dir(&dir, &witness.name)?;
        let config = ConfigLayer {
            role: Some(Role::Witness),
            data_dir: Some(paths.data_dir(&data)),
            admin_listen: Some(witness.admin_listen),
            cluster_ca: Some(tls.ca),
            cluster_cert: Some(tls.cert),
            cluster_key: Some(tls.key),
            member_id: Some(witness.member.id),
            site: Some(witness.name.clone()),
            cluster_listen: Some(witness.member.listen),
            members: members.clone(),
            ..ConfigLayer::default()
        };
        write_config(&dir, &witness.name, &config)?;
    }
    Ok(Cluster {
        dir,
        layout,
        credentials,
    })
}

/// How the paths written into configs look to the processes reading them.
struct Paths {
    /// The cluster directory on this machine.
    dir: PathBuf,
    /// Whether processes run in containers (`--service-hosts`).
    in_containers: bool,
}

impl Paths {
    /// `path` under the cluster directory, as a process sees it.
    fn seen(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.dir) {
            Ok(rest) if self.in_containers => Path::new(CONTAINER_CONFIG_DIR).join(rest),
            _ => path.to_path_buf(),
        }
    }

    /// A process's data dir, as it sees it.
    fn data_dir(&self, data: &DataDir) -> PathBuf {
        if self.in_containers {
            PathBuf::from(CONTAINER_DATA_DIR)
        } else {
            data.root().to_path_buf()
        }
    }
}

/// Creates `out` owner-only unless it exists; refuses a non-empty one.
/// Returns its absolute path.
fn create_out_dir(out: &Path) -> Result<PathBuf> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: tessera init never overwrites a cluster or its CA; \
                     choose another --out",
                    out.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", out.display())),
    }
    tessera_storage::store::create_private_dir(out)
        .with_context(|| format!("creating {}", out.display()))?;
    std::fs::canonicalize(out).with_context(|| format!("resolving {}", out.display()))
}

/// Creates the data dir of `member` under `dir/data`.
fn data_dir(dir: &Path, member: &str) -> Result<DataDir> {
    DataDir::open(&dir.join("data").join(member))
}

/// Writes `dir/member.toml`.
fn write_config(dir: &Path, member: &str, config: &impl Serialize) -> Result<()> {
    let toml = toml::to_string(config).with_context(|| format!("writing {member}'s config"))?;
    let text = format!("# {member}, written by tessera init\n{toml}");
    write_new_file(&config_path(dir, member), &text, 0o644)
}

/// `1 disk`, `2 disks`.
fn counted(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

fn config_path(dir: &Path, member: &str) -> PathBuf {
    dir.join(format!("{member}.toml"))
}

impl Cluster {
    /// What was written and how to start it, `tessera` standing for the
    /// binary as the operator called it.
    pub fn instructions(&self, tessera: &str) -> String {
        let geometry = &self.layout.geometry;
        let mut out = format!(
            "Wrote a cluster of {} ({} each, {}+{} erasure code) and {} into {}.\n\n",
            counted(self.layout.nodes.len(), "storage node"),
            counted(self.layout.disks, "disk"),
            geometry.data_shards,
            geometry.parity_shards,
            counted(self.layout.gateways.len(), "gateway"),
            self.dir.display()
        );
        out.push_str(&format!(
            "The cluster CA is {ca} and {key}: keep {key} offline (move it away); it is only \
             needed to issue certificates (tessera cert issue).\n\n",
            ca = self.dir.join(CA_CERT_FILE).display(),
            key = self.dir.join(CA_KEY_FILE).display(),
        ));
        out.push_str(&format!(
            "Root access key (also saved as {CREDENTIALS_FILE} in each gateway's data dir; \
             TESSERA_ACCESS_KEY and TESSERA_SECRET_KEY override it):\nAccess key: {}\nSecret key: {}\n\n",
            self.credentials.access_key, self.credentials.secret_key
        ));
        out.push_str(
            "Start the nodes, then the gateways and the witness (each in its own terminal, or \
             under a service manager):\n",
        );
        for node in &self.layout.nodes {
            let place: String = [node.site.as_deref(), node.zone.as_deref()]
                .into_iter()
                .flatten()
                .map(|p| format!(", {p}"))
                .collect();
            out.push_str(&format!(
                "{tessera} node --config {}    # on {}{place}\n",
                config_path(&self.dir, &node.name).display(),
                node.addr,
            ));
        }
        for gateway in &self.layout.gateways {
            let member = gateway.member.as_ref().map_or_else(String::new, |m| {
                let role = if m.voter { "voter" } else { "learner" };
                format!(", metadata member {} ({role}) on {}", m.id, m.addr)
            });
            out.push_str(&format!(
                "{tessera} serve --config {}    # S3 on http://{}, admin on http://{}{member}\n",
                config_path(&self.dir, &gateway.name).display(),
                gateway.listen,
                gateway.admin_listen,
            ));
        }
        if let Some(witness) = &self.layout.witness {
            out.push_str(&format!(
                "{tessera} serve --config {}    # witness: metadata member {} on {}, admin on http://{}\n",
                config_path(&self.dir, &witness.name).display(),
                witness.member.id,
                witness.member.addr,
                witness.admin_listen,
            ));
        }
        if self.layout.service_hosts {
            out.push_str(&format!(
                "\nWith --service-hosts each process is reached at its name: mount {} at \
                 {CONTAINER_CONFIG_DIR} and {}/NAME at {CONTAINER_DATA_DIR} (see docker/).\n",
                self.dir.display(),
                self.dir.join("data").display(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::IpAddr;

    use super::*;
    use crate::config::Config;

    #[test]
    fn configs_read_back_as_written() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("cluster");
        let request = LayoutRequest {
            nodes: 3,
            gateways: 1,
            sites: vec!["dc-a".into()],
            zones: Some(3),
            host: IpAddr::from([127, 0, 0, 1]),
            base_port: 7400,
            disks: 2,
            data_shards: 4,
            parity_shards: 2,
            witness: false,
            service_hosts: false,
            site_copies: false,
        };
        let cluster = run(&out, &request).unwrap();
        let node = NodeConfig::from_file(&out.join("node-2.toml")).unwrap();
        assert_eq!(node.id, 2);
        assert_eq!(node.listen.port(), 7403);
        assert_eq!(node.disks, 2);
        assert_eq!(node.zone.as_deref(), Some("zone-2"));
        assert_eq!(node.site.as_deref(), Some("dc-a"));
        assert!(node.data_dir.is_absolute());
        let file = ConfigLayer::from_file(&out.join("gateway-1.toml")).unwrap();
        let gateway =
            Config::load(&ConfigLayer::default(), Some(&out.join("gateway-1.toml"))).unwrap();
        assert_eq!(gateway.listen.port(), 7400);
        assert_eq!(gateway.admin_listen.port(), 7401);
        assert_eq!(gateway.disks, 0);
        assert_eq!(gateway.nodes.len(), 3);
        assert_eq!(gateway.nodes[2].addr, "127.0.0.1:7404");
        assert_eq!(gateway.nodes[2].zone.as_deref(), Some("zone-3"));
        assert!(gateway.cluster_tls.is_some());
        assert_eq!(file.access_key, None, "the root key is in the data dir");
        let data = DataDir::open(&gateway.data_dir).unwrap();
        let (creds, generated) = data.root_credentials(None).unwrap();
        assert!(!generated);
        assert_eq!(creds, cluster.credentials);

        let again = run(&out, &request).unwrap_err();
        assert!(format!("{again:#}").contains("is not empty"), "{again:#}");
    }
}
