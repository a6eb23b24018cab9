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
//! scrub_interval_days = 30        # a full scrub pass of the disks this often
//! scrub_rate_mib = 64             # reading at most this fast (0: no limit)
//! metrics_listen = "127.0.0.1:7501"   # optional: Prometheus /metrics, plain HTTP
//! otlp_endpoint = "http://127.0.0.1:4318"  # optional: export spans (see crate::otel)
//! ```
//!
//! The node scrubs its own disks (see [`crate::workers::node_scrub`]):
//! gateways collect what it finds instead of reading every shard back.
//!
//! `tessera init` writes this file. A node starts only with a certificate
//! from its cluster CA issued to `node-<id>` ([`member_name`]), so another
//! node's certificate (a config copied with only its id changed) or another
//! cluster's is refused at start rather than found out later.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use tessera_net::RpcServer;
use tessera_storage::{NodeScrub, NodeService, ShardStore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{ClusterTlsFiles, DEFAULT_SCRUB_INTERVAL_DAYS, DEFAULT_SCRUB_RATE_MIB};
use crate::datadir::DataDir;
use crate::workers::job::{self, Progress};
use crate::workers::node_scrub::NodeScrubJob;
use crate::{listener, local_stores};

/// How often the scrub looks whether a pass is due (a gateway's request
/// starts one at once).
const SCRUB_CHECK: Duration = Duration::from_secs(60);

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
    /// Days a full scrub pass of the node's disks is spread over [default: 30].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrub_interval_days: Option<u64>,
    /// MiB per second the scrub may read at most, 0 for no limit [default: 64].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrub_rate_mib: Option<u64>,
    /// Where to serve Prometheus `/metrics` (plain HTTP); none when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// OTLP/HTTP collector to export spans to (`TESSERA_OTLP_ENDPOINT`
    /// overrides it); none: tracing off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// Most finished spans kept waiting for the collector [default: 4096].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_queue_spans: Option<usize>,
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
        crate::otel::OtlpSettings::resolve(cfg.otlp_endpoint.clone(), cfg.otlp_queue_spans)
            .with_context(|| format!("in {}", path.display()))?;
        if cfg.scrub_interval_days == Some(0) {
            bail!(
                "scrub_interval_days must be at least 1 (in {})",
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
    /// Where it serves `/metrics`, when it does.
    pub metrics_addr: Option<SocketAddr>,
    server: RpcServer,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("addr", &self.addr)
            .field("stores", &self.stores)
            .field("metrics_addr", &self.metrics_addr)
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
        if cfg.metrics_listen.is_some() {
            // Before anything publishes a metric, so none is lost.
            crate::metrics::install();
            crate::metrics::publish_certificate("cluster", &tls.cert_pem);
            crate::metrics::publish_certificate("cluster-ca", &tls.ca_pem);
        }
        let dir = DataDir::open(&cfg.data_dir)?;
        let stores = local_stores::open(&dir, cfg.disks)?;
        let ids: Vec<String> = stores.iter().map(|s| s.id().to_owned()).collect();
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("binding the node listener {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        let metrics_listener = match cfg.metrics_listen {
            Some(at) => Some(
                tokio::net::TcpListener::bind(at)
                    .await
                    .with_context(|| format!("binding the metrics listener {at}"))?,
            ),
            None => None,
        };
        let stores: Vec<Arc<dyn ShardStore>> = stores
            .into_iter()
            .map(|s| Arc::new(s) as Arc<dyn ShardStore>)
            .collect();
        let scrub = Arc::new(NodeScrub::open(dir.scrub_findings_path())?);
        let service = NodeService::new(stores.iter().cloned(), Arc::clone(&scrub));
        let server = RpcServer::start("node", listener, server_tls, Arc::new(service));

        let stop = CancellationToken::new();
        let interval = cfg
            .scrub_interval_days
            .unwrap_or(DEFAULT_SCRUB_INTERVAL_DAYS)
            .saturating_mul(86_400);
        let rate = cfg
            .scrub_rate_mib
            .unwrap_or(DEFAULT_SCRUB_RATE_MIB)
            .saturating_mul(1 << 20);
        let wake = scrub.wake();
        let scrub_job = NodeScrubJob::new(
            stores,
            scrub,
            Duration::from_secs(interval),
            rate,
            dir.scrub_state_path(),
        );
        let progress = Progress::new("node-scrub");
        let mut tasks = vec![tokio::spawn(job::run(
            scrub_job,
            progress,
            SCRUB_CHECK,
            wake,
            stop.clone(),
        ))];
        let mut metrics_addr = None;
        if let Some(metrics_listener) = metrics_listener {
            metrics_addr = Some(metrics_listener.local_addr()?);
            let limits = listener::Limits {
                header_timeout: Duration::from_secs(10),
                max_connections: 16,
                grace: Duration::from_secs(1),
            };
            let service = hyper::service::service_fn(metrics_only);
            tasks.push(listener::spawn(
                "metrics",
                metrics_listener,
                None,
                service,
                stop.clone(),
                limits,
            ));
        }
        tracing::info!(id = cfg.id, %addr, stores = ?ids, site = ?cfg.site, zone = ?cfg.zone, metrics = ?metrics_addr, "storage node serving");
        Ok(RunningNode {
            addr,
            stores: ids,
            metrics_addr,
            server,
            stop,
            tasks,
        })
    }

    /// Stops serving and scrubbing.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.server.stop().await;
        for task in self.tasks {
            let _ = task.await;
        }
        tracing::info!("storage node stopped");
    }
}

/// The node's metrics listener: `GET /metrics`, and `/health/live` and
/// `/health/ready` for probes (container health checks, Kubernetes).
async fn metrics_only(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = metrics_answer(req.uri().path());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}

/// What the metrics listener answers for `path`. The listener starts after
/// the node's own listener, so a node that answers here is serving: ready
/// and live mean the same.
fn metrics_answer(path: &str) -> (StatusCode, String) {
    match path {
        "/metrics" => (StatusCode::OK, crate::metrics::render()),
        "/health/live" | "/health/ready" => (StatusCode::OK, "ok\n".to_owned()),
        _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::metrics_answer;

    #[test]
    fn probes_and_metrics_answer_and_nothing_else() {
        for path in ["/health/live", "/health/ready", "/metrics"] {
            assert_eq!(metrics_answer(path).0, StatusCode::OK, "{path}");
        }
        for path in ["/", "/health", "/admin/v1/status"] {
            assert_eq!(metrics_answer(path).0, StatusCode::NOT_FOUND, "{path}");
        }
    }
}
