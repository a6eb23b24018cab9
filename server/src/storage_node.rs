//! `tessera node`: a storage node. It keeps shards on its own disks and
//! serves them to gateways over the cluster network, mutual TLS only (see
//! [`tessera_storage::node`]).
//!
//! ```toml
//! id = 1                          # the node's number, unique in the cluster
//! listen = "127.0.0.1:7401"
//! data_dir = "/var/lib/tessera/node-1"
//! disks = 2                       # stores under <data_dir>/disks/disk-N
//! site = "dc-a"                   # optional
//! zone = "z1"                     # optional
//! cluster_ca = "ca.pem"           # the cluster identity, as a gateway's
//! cluster_cert = "node-1.pem"
//! cluster_key = "node-1.key"
//! ```
//!
//! `tessera init` writes this file. A node starts only with a certificate
//! from its cluster CA issued to `node-<id>` ([`member_name`]), so another
//! node's certificate (a config copied with only its id changed) or another
//! cluster's is refused at start rather than found out later.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tessera_net::RpcServer;
use tessera_storage::{NodeService, ShardStore};

use crate::config::ClusterTlsFiles;
use crate::datadir::DataDir;
use crate::local_stores;

/// The name node `id` goes by in the cluster, and in its certificate: `node-<id>`.
pub fn member_name(id: u64) -> String {
    format!("node-{id}")
}

/// A storage node's configuration file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's number, unique in the cluster.
    pub id: u64,
    /// Where gateways reach it.
    pub listen: SocketAddr,
    /// Where its disks live (`disks/disk-N`).
    pub data_dir: PathBuf,
    /// How many local disk directories it serves.
    pub disks: usize,
    /// The site (datacenter) it stands in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The failure zone inside the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The cluster CA certificate (PEM).
    pub cluster_ca: PathBuf,
    /// The node's certificate (PEM), signed by the cluster CA.
    pub cluster_cert: PathBuf,
    /// The node's private key (PEM).
    pub cluster_key: PathBuf,
}

impl NodeConfig {
    /// Reads and checks a node config file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading node config {}", path.display()))?;
        let cfg: NodeConfig = toml::from_str(&text)
            .with_context(|| format!("parsing node config {}", path.display()))?;
        if cfg.disks == 0 {
            bail!(
                "a node needs at least one disk (disks = 0 in {})",
                path.display()
            );
        }
        Ok(cfg)
    }
}

/// A running storage node.
pub struct RunningNode {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The ids of the stores it serves.
    pub stores: Vec<String>,
    server: RpcServer,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("addr", &self.addr)
            .field("stores", &self.stores)
            .finish_non_exhaustive()
    }
}

impl RunningNode {
    /// Opens the node's disks and starts serving them.
    pub async fn start(cfg: &NodeConfig) -> Result<RunningNode> {
        let tls = ClusterTlsFiles {
            ca: cfg.cluster_ca.clone(),
            cert: cfg.cluster_cert.clone(),
            key: cfg.cluster_key.clone(),
        }
        .load()?;
        let member = member_name(cfg.id);
        if let Err(e) = tessera_net::tls::verify_member(&tls, &member) {
            bail!(
                "node {} refuses the certificate {}: {e}. Each node needs its own certificate \
                 from the cluster CA {} (`tessera cert issue --ca-dir DIR --name {member}` issues one), \
                 and node ids must be unique",
                cfg.id,
                cfg.cluster_cert.display(),
                cfg.cluster_ca.display()
            );
        }
        let server_tls = tessera_net::tls::server_config(&tls).context("cluster tls")?;
        let dir = DataDir::open(&cfg.data_dir)?;
        let stores = local_stores::open(&dir, cfg.disks)?;
        let ids: Vec<String> = stores.iter().map(|s| s.id().to_owned()).collect();
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("binding the node listener {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        let service = NodeService::new(
            stores
                .into_iter()
                .map(|s| Arc::new(s) as Arc<dyn ShardStore>),
        );
        let server = RpcServer::start("node", listener, server_tls, Arc::new(service));
        tracing::info!(id = cfg.id, %addr, stores = ?ids, site = ?cfg.site, zone = ?cfg.zone, "storage node serving");
        Ok(RunningNode {
            addr,
            stores: ids,
            server,
        })
    }

    /// Stops serving.
    pub async fn shutdown(self) {
        self.server.stop().await;
        tracing::info!("storage node stopped");
    }
}
