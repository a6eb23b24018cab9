//! Server configuration: defaults, a TOML file, environment variables and
//! command-line flags, in that order of increasing precedence.
//!
//! One struct, [`ConfigLayer`], is both the TOML file's schema and the
//! `tessera serve` flags (each flag also reads a `TESSERA_*` variable), so
//! every setting has the same name everywhere. [`Config`] is the resolved
//! result the server runs with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::data::policy::SiteReplication;
use crate::datadir::Credentials;

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./tessera-data";
/// Default region.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default of [`Config::write_buffer`]: six 4 + 2 stripes in flight.
pub const DEFAULT_WRITE_BUFFER: usize = 64 << 20;
/// Default of [`Config::read_buffer`].
pub const DEFAULT_READ_BUFFER: usize = 32 << 20;
/// Default of [`Config::gc_grace`], in seconds.
pub const DEFAULT_GC_GRACE_SECS: u64 = 60;
/// Default of [`Config::orphan_grace`], in seconds.
pub const DEFAULT_ORPHAN_GRACE_SECS: u64 = 3600;
/// Default of [`Config::repair_grace`], in seconds: Ceph's choice (its
/// `mon_osd_down_out_interval`), long enough for a reboot or a brief outage.
pub const DEFAULT_REPAIR_GRACE_SECS: u64 = 600;
/// Default of [`Config::repair_rate`], in MiB/s.
pub const DEFAULT_REPAIR_RATE_MIB: u64 = 512;
/// Default of [`Config::replication_rate`], in MiB/s.
pub const DEFAULT_REPLICATION_RATE_MIB: u64 = 256;
/// Default of [`Config::scrub_interval`], in days.
pub const DEFAULT_SCRUB_INTERVAL_DAYS: u64 = 30;
/// Default of [`Config::scrub_rate`], in MiB/s.
pub const DEFAULT_SCRUB_RATE_MIB: u64 = 64;
/// Default of [`Config::lifecycle_rate`], in changes per second.
pub const DEFAULT_LIFECYCLE_RATE: u64 = 200;
/// Default of [`Config::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`Config::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The resolved configuration of `tessera serve`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where everything is kept (metadata, local disks, keys).
    pub data_dir: PathBuf,
    /// S3 listen address.
    pub listen: SocketAddr,
    /// Admin listen address (`/metrics`, `/health/*`, admin API).
    pub admin_listen: SocketAddr,
    /// Region reported to clients (`GetBucketLocation`).
    pub region: String,
    /// Base domain for virtual-host style requests (`bucket.DOMAIN`); path
    /// style always works.
    pub domain: Option<String>,
    /// TLS certificate and key for the S3 listener; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// Root credentials given by configuration; `None`: kept in the data dir.
    pub credentials: Option<Credentials>,
    /// Number of local-directory disks under `<data-dir>/disks/`.
    pub disks: usize,
    /// Erasure code data shards (k).
    pub data_shards: u16,
    /// Erasure code parity shards (m).
    pub parity_shards: u16,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// How often an idle background job (GC, repair) looks at its queue again.
    pub job_interval: Duration,
    /// How long a client may take to send a request's headers (and how long
    /// an idle HTTP/1 keep-alive connection stays open), on both listeners.
    pub header_timeout: Duration,
    /// Most connections each listener keeps open at once; further clients
    /// wait to be accepted until one closes.
    pub max_connections: usize,
    /// How often the shard stores are probed.
    pub health_interval: Duration,
    /// Memory all uploads together may hold in stripes being encoded and
    /// written, in bytes; uploads beyond it wait their turn.
    pub write_buffer: usize,
    /// Memory all downloads together may hold in stripes being read,
    /// decrypted and sent, in bytes; reads beyond it wait their turn.
    pub read_buffer: usize,
    /// Most memory the metadata state file's page cache may hold, in bytes.
    pub metadata_cache: usize,
    /// Shards of a segment that must be durable before a write succeeds
    /// (`None`: k + 1); the missing ones are queued for repair.
    pub write_quorum: Option<usize>,
    /// Sites that each keep a whole erasure-coded copy of every new segment
    /// (a site alone then serves every object with full redundancy); empty:
    /// one copy, its shards spread over every site.
    pub site_copies: Vec<String>,
    /// How the site copies are written: the PUT waits for every site up,
    /// or for the gateway's own site while the site replicator writes the
    /// others.
    pub site_replication: SiteReplication,
    /// Bytes per second the site replicator may write (0: no limit).
    pub replication_rate: u64,
    /// How long a queued deletion waits before GC carries it out (reads
    /// in flight hold leases besides).
    pub gc_grace: Duration,
    /// How old an unreferenced shard file must be before the orphan sweep
    /// removes it.
    pub orphan_grace: Duration,
    /// How often the orphan sweep lists every store.
    pub sweep_interval: Duration,
    /// Bytes per second repair may rebuild (0: no limit).
    pub repair_rate: u64,
    /// How long a store may be down before its shards are rebuilt on
    /// other stores (before that, repair waits for it to come back).
    pub repair_grace: Duration,
    /// How long a full scrub pass (every shard's checksums read) is spread
    /// over; a pass starts when the previous one is this old.
    pub scrub_interval: Duration,
    /// Bytes per second scrub may read at most (0: no limit).
    pub scrub_rate: u64,
    /// Changes per second the lifecycle worker may make at most (0: no limit).
    pub lifecycle_rate: u64,
    /// This gateway's cluster identity (CA, certificate, key), for talking
    /// to storage nodes.
    pub cluster_tls: Option<ClusterTlsFiles>,
    /// The storage nodes whose stores hold shards besides the local disks.
    pub nodes: Vec<NodeEntry>,
    /// S3 buckets that hold shards as nodes of their own.
    pub bucket_nodes: Vec<BucketNode>,
    /// What this process serves: S3 (a gateway) or only metadata votes.
    pub role: Role,
    /// This process as a member of a multi-member metadata cluster; `None`:
    /// the embedded single member.
    pub metadata: Option<MetadataCluster>,
    /// Where spans are exported over OTLP; `None` (the default): no tracing.
    pub otlp: Option<crate::otel::OtlpSettings>,
}

/// What `tessera serve` runs as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A gateway: S3, storage, background jobs, and a metadata member.
    #[default]
    Gateway,
    /// A witness: a metadata voter in a third place so that either site
    /// alone keeps a quorum; no S3, no storage, no jobs.
    Witness,
}

/// A founding member of the metadata cluster (`[[members]]` in a config
/// file). The list founds the cluster at first start; afterwards the
/// cluster's own membership rules (`tessera admin member`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEntry {
    /// Its member id, unique in the cluster and never reused; its
    /// certificate is issued to `member-<id>`.
    pub id: u64,
    /// `host:port` of its cluster (raft) listener.
    pub addr: String,
    /// The site (datacenter) it stands in.
    #[serde(default)]
    pub site: Option<String>,
    /// Whether it votes (default); a non-voter is a learner that receives
    /// the log (the passive site of a two-site cluster without a witness).
    #[serde(default = "voter_default")]
    pub voter: bool,
}

fn voter_default() -> bool {
    true
}

/// This process's place in a multi-member metadata cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataCluster {
    /// This member's id.
    pub member_id: u64,
    /// Its site.
    pub site: Option<String>,
    /// Where its cluster (raft) listener binds.
    pub listen: SocketAddr,
    /// The address the other members reach it at.
    pub advertise: String,
    /// The founding members, this one among them.
    pub members: Vec<MemberEntry>,
}

impl MetadataCluster {
    /// The founding voters: id → cluster address.
    pub fn voters(&self) -> std::collections::BTreeMap<u64, String> {
        self.members
            .iter()
            .filter(|m| m.voter)
            .map(|m| (m.id, m.addr.clone()))
            .collect()
    }

    /// Whether this member founds the cluster as a voter (else it joins as a learner).
    pub fn is_founding_voter(&self) -> bool {
        self.members
            .iter()
            .any(|m| m.id == self.member_id && m.voter)
    }

    /// Builds it from the settings, checking they agree with each other.
    fn resolve(
        member_id: u64,
        site: Option<String>,
        listen: Option<SocketAddr>,
        advertise: Option<String>,
        members: Vec<MemberEntry>,
    ) -> Result<MetadataCluster> {
        let listen = listen.context("member_id needs cluster_listen (the raft listener)")?;
        let mut ids = std::collections::BTreeSet::new();
        if let Some(twin) = members.iter().find(|m| !ids.insert(m.id)) {
            bail!("member {} is listed twice in [[members]]", twin.id);
        }
        let me = members.iter().find(|m| m.id == member_id).with_context(|| {
            format!(
                "member_id {member_id} is not in [[members]] (ids: {:?}): fix member_id or the list",
                ids
            )
        })?;
        if site.is_some() && me.site.is_some() && site != me.site {
            bail!(
                "site is {:?} but [[members]] puts member {member_id} in {:?}",
                site.unwrap_or_default(),
                me.site.clone().unwrap_or_default()
            );
        }
        if !members.iter().any(|m| m.voter) {
            bail!("[[members]] has no voter: at least one member must vote");
        }
        let site = site.or_else(|| me.site.clone());
        let advertise = advertise.unwrap_or_else(|| me.addr.clone());
        Ok(MetadataCluster {
            member_id,
            site,
            listen,
            advertise,
            members,
        })
    }
}

/// Paths of a cluster identity: the cluster CA's certificate and this
/// process's certificate and key, all PEM (written by `tessera init`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTlsFiles {
    /// The cluster CA certificate.
    pub ca: PathBuf,
    /// This process's certificate, signed by the CA.
    pub cert: PathBuf,
    /// This process's private key.
    pub key: PathBuf,
}

impl ClusterTlsFiles {
    /// Reads the three PEM files.
    pub fn load(&self) -> Result<tessera_net::ClusterTls> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading cluster tls file {}", path.display()))
        };
        Ok(tessera_net::ClusterTls {
            ca_pem: read(&self.ca)?,
            cert_pem: read(&self.cert)?,
            key_pem: read(&self.key)?,
        })
    }
}

/// A storage node a gateway uses (`[[nodes]]` in its config file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// The node's number, unique in the cluster.
    pub id: u64,
    /// `host:port` of its node listener.
    pub addr: String,
    /// The site (datacenter) it stands in.
    #[serde(default)]
    pub site: Option<String>,
    /// The failure zone (rack, room, house) inside the site.
    #[serde(default)]
    pub zone: Option<String>,
}

/// Default of [`BucketNodeEntry::timeout_secs`].
pub const DEFAULT_BUCKET_TIMEOUT_SECS: u64 = 60;

/// An S3-compatible bucket that keeps shards like a storage node
/// (`[[bucket_nodes]]` in a gateway's config file).
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BucketNodeEntry {
    /// Its node number, unique among `[[nodes]]` and `[[bucket_nodes]]`
    /// (what `tessera admin node list` and `node drain` name it by).
    pub id: u64,
    /// `https://host[:port]` of the S3 service (`http://` on a trusted network).
    pub endpoint: String,
    /// The bucket, which must exist.
    pub bucket: String,
    /// Key prefix of the shards in the bucket (default: the bucket's root).
    #[serde(default)]
    pub prefix: Option<String>,
    /// The region requests are signed for (default `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// Access key id.
    pub access_key: String,
    /// Secret key, written in the file; or use `secret_key_env`.
    #[serde(default)]
    pub secret_key: Option<String>,
    /// Name of the environment variable holding the secret key.
    #[serde(default)]
    pub secret_key_env: Option<String>,
    /// A PEM file of the CA certificates to trust instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds a request may wait for its answer (default 60).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The site (datacenter) it counts as part of.
    #[serde(default)]
    pub site: Option<String>,
    /// The failure zone inside the site (default: a zone of its own).
    #[serde(default)]
    pub zone: Option<String>,
}

impl std::fmt::Debug for BucketNodeEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketNodeEntry")
            .field("id", &self.id)
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("secret_key_env", &self.secret_key_env)
            .finish_non_exhaustive()
    }
}

/// A bucket node as the server uses it: its number, its place, and how to
/// reach its bucket (the secret key read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketNode {
    /// Its node number.
    pub id: u64,
    /// The site it counts as part of.
    pub site: Option<String>,
    /// Its failure zone (`None`: a zone of its own).
    pub zone: Option<String>,
    /// The bucket store's settings.
    pub store: tessera_storage::S3BucketConfig,
}

impl BucketNodeEntry {
    /// The bucket node, its secret key read from `secret_key` or from the
    /// variable `secret_key_env` names (looked up with `env`).
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<BucketNode> {
        if self.timeout_secs == Some(0) {
            bail!("bucket node {}: timeout_secs must be at least 1", self.id);
        }
        let secret_key = match (&self.secret_key, &self.secret_key_env) {
            (Some(secret), None) => secret.clone(),
            (None, Some(name)) => env(name).with_context(|| {
                format!(
                    "bucket node {}: the environment variable {name} (secret_key_env) is not set",
                    self.id
                )
            })?,
            _ => bail!(
                "bucket node {} needs exactly one of secret_key and secret_key_env",
                self.id
            ),
        };
        let store = tessera_storage::S3BucketConfig {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone().unwrap_or_default(),
            region: self
                .region
                .clone()
                .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            access_key: self.access_key.clone(),
            secret_key,
            ca_file: self.ca_file.clone(),
            timeout: Duration::from_secs(self.timeout_secs.unwrap_or(DEFAULT_BUCKET_TIMEOUT_SECS)),
        };
        Ok(BucketNode {
            id: self.id,
            site: self.site.clone(),
            zone: self.zone.clone(),
            store,
        })
    }
}

/// Paths of a PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

impl Config {
    /// The metadata cluster's founding members (none for the embedded one).
    pub fn founding_members(&self) -> Vec<MemberEntry> {
        self.metadata
            .as_ref()
            .map(|m| m.members.clone())
            .unwrap_or_default()
    }

    /// The embedded default, with data under `data_dir`.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9001)),
            region: DEFAULT_REGION.to_owned(),
            domain: None,
            tls: None,
            credentials: None,
            disks: 6,
            data_shards: 4,
            parity_shards: 2,
            shutdown_timeout: Duration::from_secs(30),
            job_interval: Duration::from_secs(5),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            health_interval: Duration::from_secs(5),
            write_buffer: DEFAULT_WRITE_BUFFER,
            read_buffer: DEFAULT_READ_BUFFER,
            metadata_cache: tessera_raft::node::DEFAULT_STATE_CACHE_BYTES,
            write_quorum: None,
            site_copies: Vec::new(),
            site_replication: SiteReplication::Sync,
            replication_rate: DEFAULT_REPLICATION_RATE_MIB << 20,
            gc_grace: Duration::from_secs(DEFAULT_GC_GRACE_SECS),
            orphan_grace: Duration::from_secs(DEFAULT_ORPHAN_GRACE_SECS),
            sweep_interval: Duration::from_secs(6 * 3600),
            repair_rate: DEFAULT_REPAIR_RATE_MIB << 20,
            repair_grace: Duration::from_secs(DEFAULT_REPAIR_GRACE_SECS),
            scrub_interval: Duration::from_secs(DEFAULT_SCRUB_INTERVAL_DAYS * 86_400),
            scrub_rate: DEFAULT_SCRUB_RATE_MIB << 20,
            lifecycle_rate: DEFAULT_LIFECYCLE_RATE,
            cluster_tls: None,
            nodes: Vec::new(),
            bucket_nodes: Vec::new(),
            role: Role::Gateway,
            metadata: None,
            otlp: None,
        }
    }

    /// Resolves flags/env (`cli`, already merged by clap) over the config
    /// file (`cli.config`, if any) over the defaults.
    pub fn load(cli: &ConfigLayer, config_file: Option<&Path>) -> Result<Self> {
        let file = match config_file {
            Some(path) => ConfigLayer::from_file(path)?,
            None => ConfigLayer::default(),
        };
        cli.clone().over(file).resolve()
    }
}

/// One source of settings: every field optional. Used as the TOML file
/// schema and as the `tessera serve` flags (with `TESSERA_*` env fallbacks).
/// Serialized (by `tessera init`), unset fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// Data directory [default: ./tessera-data]
    #[arg(long, env = "TESSERA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// S3 listen address [default: 127.0.0.1:9000]
    #[arg(long, env = "TESSERA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Admin listen address: /metrics, /health/*, admin API [default: 127.0.0.1:9001]
    #[arg(long, env = "TESSERA_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Region reported to clients [default: us-east-1]
    #[arg(long, env = "TESSERA_REGION")]
    pub region: Option<String>,
    /// Base domain for virtual-host style requests (bucket.DOMAIN)
    #[arg(long, env = "TESSERA_DOMAIN")]
    pub domain: Option<String>,
    /// TLS certificate chain (PEM) for the S3 listener
    #[arg(long, env = "TESSERA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for the S3 listener
    #[arg(long, env = "TESSERA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Root access key id [default: generated once, saved in the data dir]
    #[arg(long, env = "TESSERA_ACCESS_KEY", requires = "secret_key")]
    pub access_key: Option<String>,
    /// Root secret key
    #[arg(
        long,
        env = "TESSERA_SECRET_KEY",
        hide_env_values = true,
        requires = "access_key"
    )]
    pub secret_key: Option<String>,
    /// Number of local disk directories under <data-dir>/disks [default: 6]
    #[arg(long, env = "TESSERA_DISKS")]
    pub disks: Option<usize>,
    /// Erasure code data shards [default: 4]
    #[arg(long, env = "TESSERA_DATA_SHARDS")]
    pub data_shards: Option<u16>,
    /// Erasure code parity shards [default: 2]
    #[arg(long, env = "TESSERA_PARITY_SHARDS")]
    pub parity_shards: Option<u16>,
    /// Seconds shutdown waits for in-flight requests [default: 30]
    #[arg(long, env = "TESSERA_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout_secs: Option<u64>,
    /// Seconds a client may take to send a request's headers; also how long idle connections stay open [default: 10]
    #[arg(long, env = "TESSERA_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Most connections open at once per listener; more clients wait to be accepted [default: 1024]
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// MiB of memory all uploads together may buffer; more uploads wait [default: 64]
    #[arg(long, env = "TESSERA_WRITE_BUFFER_MIB")]
    pub write_buffer_mib: Option<usize>,
    /// MiB of memory all downloads together may buffer; more reads wait [default: 32]
    #[arg(long, env = "TESSERA_READ_BUFFER_MIB")]
    pub read_buffer_mib: Option<usize>,
    /// MiB of memory the metadata page cache may hold [default: 8]
    #[arg(long, env = "TESSERA_METADATA_CACHE_MIB")]
    pub metadata_cache_mib: Option<usize>,
    /// Shards that must be durable before a write succeeds, k to k+m [default: k+1]
    #[arg(long, env = "TESSERA_WRITE_QUORUM")]
    pub write_quorum: Option<usize>,
    /// Sites that each keep a whole copy of every new segment, comma-separated (dc-a,dc-b); PUT waits for every site up [default: one copy spread over the sites]
    #[arg(long, env = "TESSERA_SITE_COPIES", value_delimiter = ',')]
    pub site_copies: Option<Vec<String>>,
    /// How site copies are written: sync (PUT waits for every site up) or async (PUT waits for this gateway's site; the site replicator writes the others) [default: sync]
    #[arg(long, env = "TESSERA_SITE_REPLICATION", value_enum)]
    pub site_replication: Option<SiteReplication>,
    /// MiB per second the site replicator may write to the other sites, 0 for no limit [default: 256]
    #[arg(long, env = "TESSERA_REPLICATION_RATE_MIB")]
    pub replication_rate_mib: Option<u64>,
    /// Seconds a deletion waits before GC removes its shards [default: 60]
    #[arg(long, env = "TESSERA_GC_GRACE_SECS")]
    pub gc_grace_secs: Option<u64>,
    /// Seconds an unreferenced shard file is kept before the sweep removes it [default: 3600]
    #[arg(long, env = "TESSERA_ORPHAN_GRACE_SECS")]
    pub orphan_grace_secs: Option<u64>,
    /// MiB per second repair may rebuild, 0 for no limit [default: 512]
    #[arg(long, env = "TESSERA_REPAIR_RATE_MIB")]
    pub repair_rate_mib: Option<u64>,
    /// Seconds between two probes of the disks and storage nodes [default: 5]
    #[arg(long, env = "TESSERA_PROBE_INTERVAL_SECS")]
    pub probe_interval_secs: Option<u64>,
    /// Seconds a store may be down before its shards are rebuilt elsewhere [default: 600]
    #[arg(long, env = "TESSERA_REPAIR_GRACE_SECS")]
    pub repair_grace_secs: Option<u64>,
    /// Days a full scrub pass is spread over [default: 30]
    #[arg(long, env = "TESSERA_SCRUB_INTERVAL_DAYS")]
    pub scrub_interval_days: Option<u64>,
    /// MiB per second scrub may read at most, 0 for no limit [default: 64]
    #[arg(long, env = "TESSERA_SCRUB_RATE_MIB")]
    pub scrub_rate_mib: Option<u64>,
    /// Objects, versions and uploads the lifecycle worker may remove per second, 0 for no limit [default: 200]
    #[arg(long, env = "TESSERA_LIFECYCLE_RATE")]
    pub lifecycle_rate: Option<u64>,
    /// The cluster CA certificate (PEM), to talk to storage nodes
    #[arg(long, env = "TESSERA_CLUSTER_CA")]
    pub cluster_ca: Option<PathBuf>,
    /// This gateway's cluster certificate (PEM), signed by the cluster CA
    #[arg(long, env = "TESSERA_CLUSTER_CERT")]
    pub cluster_cert: Option<PathBuf>,
    /// This gateway's cluster private key (PEM)
    #[arg(long, env = "TESSERA_CLUSTER_KEY")]
    pub cluster_key: Option<PathBuf>,
    /// What to run as: gateway (S3 and storage) or witness (a metadata voter only) [default: gateway]
    #[arg(long, env = "TESSERA_ROLE")]
    pub role: Option<Role>,
    /// This process's member id in a multi-member metadata cluster (see [[members]])
    #[arg(long, env = "TESSERA_MEMBER_ID")]
    pub member_id: Option<u64>,
    /// The site (datacenter) this process stands in
    #[arg(long, env = "TESSERA_SITE")]
    pub site: Option<String>,
    /// Where the metadata cluster's raft listener binds (mutual TLS)
    #[arg(long, env = "TESSERA_CLUSTER_LISTEN")]
    pub cluster_listen: Option<SocketAddr>,
    /// host:port the other members reach this one at [default: its [[members]] addr]
    #[arg(long, env = "TESSERA_CLUSTER_ADVERTISE")]
    pub cluster_advertise: Option<String>,
    /// OTLP/HTTP collector to export spans to (http://host:4318; spans go to /v1/traces) [default: none, tracing off]
    #[arg(long, env = "TESSERA_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Most finished spans kept waiting for the collector; more are dropped [default: 4096]
    #[arg(long, env = "TESSERA_OTLP_QUEUE_SPANS")]
    pub otlp_queue_spans: Option<usize>,
    /// The founding members of the metadata cluster (`[[members]]` tables:
    /// id, addr, site, voter); config file only.
    #[arg(skip)]
    pub members: Option<Vec<MemberEntry>>,
    /// Storage nodes (`[[nodes]]` tables: id, addr, site, zone); config file only.
    #[arg(skip)]
    pub nodes: Option<Vec<NodeEntry>>,
    /// S3 buckets holding shards as nodes (`[[bucket_nodes]]` tables:
    /// id, endpoint, bucket, prefix, region, access_key, secret_key or
    /// secret_key_env, ca_file, timeout_secs, site, zone); config file only.
    #[arg(skip)]
    pub bucket_nodes: Option<Vec<BucketNodeEntry>>,
}

impl ConfigLayer {
    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// This layer with unset fields taken from `lower`.
    pub fn over(self, lower: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            data_dir: self.data_dir.or(lower.data_dir),
            listen: self.listen.or(lower.listen),
            admin_listen: self.admin_listen.or(lower.admin_listen),
            region: self.region.or(lower.region),
            domain: self.domain.or(lower.domain),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            access_key: self.access_key.or(lower.access_key),
            secret_key: self.secret_key.or(lower.secret_key),
            disks: self.disks.or(lower.disks),
            data_shards: self.data_shards.or(lower.data_shards),
            parity_shards: self.parity_shards.or(lower.parity_shards),
            shutdown_timeout_secs: self.shutdown_timeout_secs.or(lower.shutdown_timeout_secs),
            header_timeout_secs: self.header_timeout_secs.or(lower.header_timeout_secs),
            max_connections: self.max_connections.or(lower.max_connections),
            write_buffer_mib: self.write_buffer_mib.or(lower.write_buffer_mib),
            read_buffer_mib: self.read_buffer_mib.or(lower.read_buffer_mib),
            metadata_cache_mib: self.metadata_cache_mib.or(lower.metadata_cache_mib),
            write_quorum: self.write_quorum.or(lower.write_quorum),
            site_copies: self.site_copies.or(lower.site_copies),
            site_replication: self.site_replication.or(lower.site_replication),
            replication_rate_mib: self.replication_rate_mib.or(lower.replication_rate_mib),
            gc_grace_secs: self.gc_grace_secs.or(lower.gc_grace_secs),
            probe_interval_secs: self.probe_interval_secs.or(lower.probe_interval_secs),
            orphan_grace_secs: self.orphan_grace_secs.or(lower.orphan_grace_secs),
            repair_rate_mib: self.repair_rate_mib.or(lower.repair_rate_mib),
            repair_grace_secs: self.repair_grace_secs.or(lower.repair_grace_secs),
            scrub_interval_days: self.scrub_interval_days.or(lower.scrub_interval_days),
            scrub_rate_mib: self.scrub_rate_mib.or(lower.scrub_rate_mib),
            lifecycle_rate: self.lifecycle_rate.or(lower.lifecycle_rate),
            cluster_ca: self.cluster_ca.or(lower.cluster_ca),
            cluster_cert: self.cluster_cert.or(lower.cluster_cert),
            cluster_key: self.cluster_key.or(lower.cluster_key),
            role: self.role.or(lower.role),
            member_id: self.member_id.or(lower.member_id),
            site: self.site.or(lower.site),
            cluster_listen: self.cluster_listen.or(lower.cluster_listen),
            cluster_advertise: self.cluster_advertise.or(lower.cluster_advertise),
            otlp_endpoint: self.otlp_endpoint.or(lower.otlp_endpoint),
            otlp_queue_spans: self.otlp_queue_spans.or(lower.otlp_queue_spans),
            members: self.members.or(lower.members),
            nodes: self.nodes.or(lower.nodes),
            bucket_nodes: self.bucket_nodes.or(lower.bucket_nodes),
        }
    }

    /// Fills the remaining gaps with the defaults and checks the result.
    pub fn resolve(self) -> Result<Config> {
        let mut cfg = Config::embedded(
            self.data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        );
        if let Some(v) = self.listen {
            cfg.listen = v;
        }
        if let Some(v) = self.admin_listen {
            cfg.admin_listen = v;
        }
        if let Some(v) = self.region {
            cfg.region = v;
        }
        cfg.domain = self.domain;
        cfg.tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => bail!("tls_cert and tls_key must be set together"),
        };
        cfg.credentials = match (self.access_key, self.secret_key) {
            (Some(access_key), Some(secret_key)) => Some(Credentials {
                access_key,
                secret_key,
            }),
            (None, None) => None,
            _ => bail!("access_key and secret_key must be set together"),
        };
        cfg.nodes = self.nodes.unwrap_or_default();
        cfg.bucket_nodes = self
            .bucket_nodes
            .unwrap_or_default()
            .iter()
            .map(|b| b.resolve(|name| std::env::var(name).ok()))
            .collect::<Result<_>>()?;
        // With storage nodes, local disks are only what is asked for.
        cfg.disks = self
            .disks
            .unwrap_or(if cfg.nodes.is_empty() { cfg.disks } else { 0 });
        cfg.cluster_tls = match (self.cluster_ca, self.cluster_cert, self.cluster_key) {
            (Some(ca), Some(cert), Some(key)) => Some(ClusterTlsFiles { ca, cert, key }),
            (None, None, None) => None,
            _ => bail!("cluster_ca, cluster_cert and cluster_key must be set together"),
        };
        if let Some(v) = self.data_shards {
            cfg.data_shards = v;
        }
        if let Some(v) = self.parity_shards {
            cfg.parity_shards = v;
        }
        if let Some(v) = self.shutdown_timeout_secs {
            cfg.shutdown_timeout = Duration::from_secs(v);
        }
        if let Some(v) = self.header_timeout_secs {
            cfg.header_timeout = Duration::from_secs(v);
        }
        if let Some(v) = self.max_connections {
            cfg.max_connections = v;
        }
        for (name, mib, bytes) in [
            (
                "write_buffer_mib",
                self.write_buffer_mib,
                &mut cfg.write_buffer,
            ),
            (
                "read_buffer_mib",
                self.read_buffer_mib,
                &mut cfg.read_buffer,
            ),
            (
                "metadata_cache_mib",
                self.metadata_cache_mib,
                &mut cfg.metadata_cache,
            ),
        ] {
            if let Some(mib) = mib {
                if mib == 0 {
                    bail!("{name} must be at least 1");
                }
                *bytes = mib.saturating_mul(1 << 20);
            }
        }
        cfg.write_quorum = self.write_quorum;
        cfg.site_copies = self.site_copies.unwrap_or_default();
        cfg.site_replication = self.site_replication.unwrap_or_default();
        if let Some(v) = self.gc_grace_secs {
            cfg.gc_grace = Duration::from_secs(v);
        }
        if let Some(v) = self.orphan_grace_secs {
            cfg.orphan_grace = Duration::from_secs(v);
        }
        if let Some(v) = self.repair_rate_mib {
            cfg.repair_rate = v.saturating_mul(1 << 20);
        }
        if let Some(v) = self.replication_rate_mib {
            cfg.replication_rate = v.saturating_mul(1 << 20);
        }
        if let Some(v) = self.probe_interval_secs {
            cfg.health_interval = Duration::from_secs(v.max(1));
        }
        if let Some(v) = self.repair_grace_secs {
            cfg.repair_grace = Duration::from_secs(v);
        }
        if let Some(v) = self.scrub_interval_days {
            if v == 0 {
                bail!("scrub_interval_days must be at least 1");
            }
            cfg.scrub_interval = Duration::from_secs(v.saturating_mul(86_400));
        }
        if let Some(v) = self.scrub_rate_mib {
            cfg.scrub_rate = v.saturating_mul(1 << 20);
        }
        if let Some(v) = self.lifecycle_rate {
            cfg.lifecycle_rate = v;
        }
        cfg.otlp = crate::otel::OtlpSettings::resolve(self.otlp_endpoint, self.otlp_queue_spans)?;
        cfg.role = self.role.unwrap_or_default();
        if cfg.role == Role::Witness && self.disks.is_none() {
            cfg.disks = 0;
        }
        cfg.metadata = match (self.member_id, self.members) {
            (Some(id), Some(members)) => Some(MetadataCluster::resolve(
                id,
                self.site,
                self.cluster_listen,
                self.cluster_advertise,
                members,
            )?),
            (None, None) => None,
            (Some(_), None) => {
                bail!("member_id needs the [[members]] list of the metadata cluster")
            }
            (None, Some(_)) => bail!("[[members]] needs member_id: which of them is this process"),
        };
        cfg.check()?;
        Ok(cfg)
    }
}

impl Config {
    /// `site_copies` names distinct sites, each with storage nodes listed
    /// (when nodes are listed here at all: they may also come from the
    /// metadata alone).
    fn check_site_copies(&self) -> Result<()> {
        let mut seen = std::collections::BTreeSet::new();
        for site in &self.site_copies {
            if site.is_empty() {
                bail!("site_copies: a site name is empty");
            }
            if !seen.insert(site) {
                bail!("site_copies names {site} twice");
            }
            let listed = self
                .nodes
                .iter()
                .any(|n| n.site.as_deref() == Some(site.as_str()));
            if !self.nodes.is_empty() && !listed {
                bail!("site_copies names {site}, but no storage node listed stands there");
            }
        }
        if !self.site_copies.is_empty() && self.nodes.is_empty() && self.metadata.is_none() {
            bail!("site_copies needs storage nodes in those sites");
        }
        Ok(())
    }

    fn check(&self) -> Result<()> {
        if self.data_shards == 0 {
            bail!("data_shards must be at least 1");
        }
        let width = usize::from(self.data_shards) + usize::from(self.parity_shards);
        if self.metadata.is_some() && self.cluster_tls.is_none() {
            bail!("a metadata cluster member needs cluster_ca, cluster_cert and cluster_key");
        }
        if self.role == Role::Witness && self.metadata.is_none() {
            bail!("a witness is a member of a metadata cluster: set member_id and [[members]]");
        }
        if self.role == Role::Gateway
            && self.nodes.is_empty()
            && self.disks + self.bucket_nodes.len() < width
        {
            bail!(
                "{} disks and {} bucket nodes cannot hold {}+{} erasure-coded shards on distinct stores",
                self.disks,
                self.bucket_nodes.len(),
                self.data_shards,
                self.parity_shards
            );
        }
        if self.region.is_empty() {
            bail!("region must not be empty");
        }
        if !self.nodes.is_empty() && self.cluster_tls.is_none() {
            bail!("storage nodes need cluster_ca, cluster_cert and cluster_key");
        }
        let mut ids = std::collections::BTreeSet::new();
        let all_ids = self.nodes.iter().map(|n| n.id);
        if let Some(twice) = all_ids
            .chain(self.bucket_nodes.iter().map(|b| b.id))
            .find(|id| !ids.insert(*id))
        {
            bail!("node id {twice} is listed twice");
        }
        if ids.contains(&0) {
            bail!("node id 0 stands for the local disks: number nodes from 1");
        }

        if let Some(q) = self.write_quorum
            && (q < usize::from(self.data_shards) || q > width)
        {
            bail!(
                "write_quorum {q} must be between {} and {width} (k to k+m)",
                self.data_shards
            );
        }
        self.check_site_copies()?;
        if self.header_timeout.is_zero() {
            bail!("header_timeout_secs must be at least 1");
        }
        if self.max_connections == 0 {
            bail!("max_connections must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_default() {
        let cfg = ConfigLayer::default().resolve().unwrap();
        assert_eq!(cfg.data_dir, PathBuf::from("./tessera-data"));
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(cfg.admin_listen.to_string(), "127.0.0.1:9001");
        assert_eq!((cfg.disks, cfg.data_shards, cfg.parity_shards), (6, 4, 2));
        assert_eq!(cfg.region, "us-east-1");
        assert!(cfg.tls.is_none() && cfg.credentials.is_none());
    }

    #[test]
    fn higher_layers_win_field_by_field() {
        let file: ConfigLayer = toml::from_str(
            r#"
            listen = "0.0.0.0:9100"
            region = "eu-west-1"
            disks = 8
            "#,
        )
        .unwrap();
        let flags = ConfigLayer {
            listen: Some("127.0.0.1:9200".parse().unwrap()),
            ..Default::default()
        };
        let cfg = flags.over(file).resolve().unwrap();
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:9200");
        assert_eq!(cfg.region, "eu-west-1");
        assert_eq!(cfg.disks, 8);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_geometry() {
        assert!(toml::from_str::<ConfigLayer>("listne = \"x\"").is_err());
        let layer = ConfigLayer {
            disks: Some(3),
            ..Default::default()
        };
        assert!(layer.resolve().is_err());
        let half_tls = ConfigLayer {
            tls_cert: Some("c.pem".into()),
            ..Default::default()
        };
        assert!(half_tls.resolve().is_err());
    }

    #[test]
    fn write_quorum_stays_between_k_and_k_plus_m() {
        for (q, ok) in [(3, false), (4, true), (6, true), (7, false)] {
            let layer: ConfigLayer = toml::from_str(&format!("write_quorum = {q}")).unwrap();
            assert_eq!(layer.resolve().is_ok(), ok, "write_quorum {q}");
        }
        let cfg = ConfigLayer::default().resolve().unwrap();
        assert_eq!(cfg.write_quorum, None);
    }

    #[test]
    fn memory_settings_are_mib_and_never_zero() {
        let layer: ConfigLayer =
            toml::from_str("write_buffer_mib = 48\nread_buffer_mib = 16\nmetadata_cache_mib = 4")
                .unwrap();
        let cfg = layer.resolve().unwrap();
        assert_eq!(
            (cfg.write_buffer, cfg.read_buffer, cfg.metadata_cache),
            (48 << 20, 16 << 20, 4 << 20)
        );
        for key in ["write_buffer_mib", "read_buffer_mib", "metadata_cache_mib"] {
            let zero: ConfigLayer = toml::from_str(&format!("{key} = 0")).unwrap();
            let err = zero.resolve().unwrap_err().to_string();
            assert_eq!(err, format!("{key} must be at least 1"));
        }
    }

    #[test]
    fn connection_limits_have_defaults_and_are_never_zero() {
        let cfg = ConfigLayer::default().resolve().unwrap();
        assert_eq!(cfg.header_timeout, Duration::from_secs(10));
        assert_eq!(cfg.max_connections, 1024);
        let layer: ConfigLayer =
            toml::from_str("header_timeout_secs = 3\nmax_connections = 64").unwrap();
        let cfg = layer.resolve().unwrap();
        assert_eq!(
            (cfg.header_timeout, cfg.max_connections),
            (Duration::from_secs(3), 64)
        );
        for key in ["header_timeout_secs", "max_connections"] {
            let zero: ConfigLayer = toml::from_str(&format!("{key} = 0")).unwrap();
            let err = zero.resolve().unwrap_err().to_string();
            assert_eq!(err, format!("{key} must be at least 1"));
        }
    }

    const BUCKET_NODE: &str = r#"
        [[bucket_nodes]]
        id = 7
        endpoint = "https://s3.example.com"
        bucket = "offsite"
        access_key = "AK"
        secret_key_env = "OFFSITE_SECRET"
        zone = "far"
    "#;

    #[test]
    fn bucket_nodes_read_their_secret_from_the_file_or_the_environment() {
        let layer: ConfigLayer = toml::from_str(BUCKET_NODE).unwrap();
        let entry = &layer.bucket_nodes.as_ref().unwrap()[0];
        let node = entry
            .resolve(|name| (name == "OFFSITE_SECRET").then(|| "s3cr3t".to_owned()))
            .unwrap();
        assert_eq!((node.id, node.zone.as_deref()), (7, Some("far")));
        assert_eq!(node.store.secret_key, "s3cr3t");
        assert_eq!(node.store.region, "us-east-1");
        assert_eq!(node.store.prefix, "");
        assert_eq!(node.store.timeout, Duration::from_secs(60));
        let unset = entry.resolve(|_| None).unwrap_err().to_string();
        assert!(unset.contains("OFFSITE_SECRET"), "{unset}");
        // Never both, never neither; the secret never shows in logs.
        let mut both = entry.clone();
        both.secret_key = Some("inline".into());
        assert!(both.resolve(|_| Some("env".into())).is_err());
        let mut neither = entry.clone();
        neither.secret_key_env = None;
        assert!(neither.resolve(|_| None).is_err());
        let mut inline = neither;
        inline.secret_key = Some("inline".into());
        let node = inline.resolve(|_| None).unwrap();
        assert!(!format!("{node:?}{inline:?}").contains("inline"));
    }

    #[test]
    fn bucket_nodes_count_as_stores_and_share_the_node_numbers() {
        let inline =
            BUCKET_NODE.replace("secret_key_env = \"OFFSITE_SECRET\"", "secret_key = \"x\"");
        let with = |extra: &str| toml::from_str::<ConfigLayer>(&format!("{extra}\n{inline}"));
        // Five disks and the bucket hold a 4+2 segment; four disks do not.
        let cfg = with("disks = 5").unwrap().resolve().unwrap();
        assert_eq!((cfg.disks, cfg.bucket_nodes.len()), (5, 1));
        assert!(with("disks = 4").unwrap().resolve().is_err());
        // Node numbers are one space with [[nodes]], and 0 is the local disks.
        let clash = format!(
            "cluster_ca = \"ca\"\ncluster_cert = \"c\"\ncluster_key = \"k\"\n{inline}\
             [[nodes]]\nid = 7\naddr = \"127.0.0.1:1\"\n"
        );
        let err = toml::from_str::<ConfigLayer>(&clash)
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert_eq!(err, "node id 7 is listed twice");
        let zero = inline.replace("id = 7", "id = 0");
        let zero: ConfigLayer = toml::from_str(&zero).unwrap();
        assert!(zero.resolve().is_err());
        let no_timeout: ConfigLayer =
            toml::from_str(&format!("{inline}timeout_secs = 0\n")).unwrap();
        assert!(no_timeout.resolve().is_err());
    }
}
