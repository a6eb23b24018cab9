//! This process as a member of the metadata cluster: the embedded single
//! member of `tessera serve` with no cluster settings, or one member of a
//! multi-member cluster ([`MetadataCluster`]) over mutual TLS.
//!
//! A member of a cluster starts like this:
//!
//! 1. its certificate must be issued by the cluster CA to `member-<id>` (a
//!    config naming another id fails here), and its data dir must be its
//!    own: the first start writes `member.toml` (id, site, the CA's
//!    fingerprint), and a later start with another id, site or CA is
//!    refused with what differs;
//! 2. a fresh founding voter founds the cluster with the configured voters
//!    (each founding voter writes the same first entry); a fresh learner
//!    asks the voters to add it (or is added by `tessera admin member
//!    add`); a member that already belongs to the cluster just rejoins it;
//!    raft answers only the certificates of members and of `[[members]]`;
//! 3. it waits until it hears a leader with a quorum, logging what it waits
//!    for, and only then does the server go on.
//!
//! After the founding, the cluster's membership is changed only through
//! raft ([`admin`]): the `[[members]]` list is not read again.

pub mod admin;
pub mod failover;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tessera_raft::node::{MetaConfig, MetaNode, RaftTiming};

use crate::config::{Config, MetadataCluster, Role};
use crate::datadir::{DataDir, write_private_file};

/// How long the embedded member may take to elect itself.
const SINGLE_LEADER_WAIT: Duration = Duration::from_secs(20);
/// How often a member waiting for its cluster says so in the log.
const WAIT_LOG_EVERY: Duration = Duration::from_secs(10);
/// The identity file in the data dir of a cluster member.
const IDENTITY_FILE: &str = "member.toml";

/// Longest a metadata call of a cluster member may take before it answers
/// "no quorum" (the S3 request then gets a 503 with `Retry-After`): a
/// client is told within two seconds when this side of the cluster cannot
/// commit, rather than left hanging.
pub const CLUSTER_REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);

/// Starts this process's metadata member as `config` says and returns once
/// it is part of a cluster that has a leader.
pub async fn start(dir: &DataDir, config: &Config) -> Result<MetaNode> {
    match &config.metadata {
        None => start_single(dir, config.metadata_cache).await,
        Some(cluster) => start_member(dir, config, cluster).await,
    }
}

/// The embedded single member under `<data-dir>/meta`, waiting for it to lead.
async fn start_single(dir: &DataDir, cache_bytes: usize) -> Result<MetaNode> {
    let mut meta_config = MetaConfig::new(1, dir.meta_dir());
    meta_config.state_cache_bytes = cache_bytes;
    let meta = MetaNode::start(meta_config)
        .await
        .context("starting the metadata member")?;
    meta.bootstrap_single()
        .await
        .context("initializing the single-member metadata cluster")?;
    let deadline = tokio::time::Instant::now() + SINGLE_LEADER_WAIT;
    while meta.status().leader.is_none() {
        if tokio::time::Instant::now() > deadline {
            bail!("the metadata member elected no leader within {SINGLE_LEADER_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(meta)
}

async fn start_member(
    dir: &DataDir,
    config: &Config,
    cluster: &MetadataCluster,
) -> Result<MetaNode> {
    let tls_files = config
        .cluster_tls
        .as_ref()
        .context("a metadata cluster member needs cluster_ca, cluster_cert and cluster_key")?;
    let tls = tls_files.load()?;
    let identity = MemberIdentity {
        id: cluster.member_id,
        site: cluster.site.clone(),
        ca_sha256: hex::encode(Sha256::digest(tls.ca_pem.trim().as_bytes())),
    };
    identity.check_or_write(dir.root())?;
    let mut meta_config = MetaConfig::new(cluster.member_id, dir.meta_dir());
    meta_config.state_cache_bytes = config.metadata_cache;
    meta_config.rpc_listen = Some(cluster.listen);
    meta_config.advertise = Some(cluster.advertise.clone());
    meta_config.tls = Some(tls);
    // Raft answers members only: the other founding members, and whoever
    // the cluster has added since; a storage node's certificate is refused.
    meta_config.accept_peers = Some(cluster.members.iter().map(|m| m.id).collect());
    // The leader runs the cluster's jobs (repair, GC, scrub), which need
    // the stores only gateways have: a witness leads only when it must.
    meta_config.witness = config.role == Role::Witness;
    meta_config.timing = RaftTiming {
        request_timeout: CLUSTER_REQUEST_TIMEOUT,
        ..RaftTiming::default()
    };
    let meta = MetaNode::start(meta_config).await.with_context(|| {
        format!(
            "starting metadata member {} (cluster listener {})",
            cluster.member_id, cluster.listen
        )
    })?;
    if let Err(e) = enter(&meta, cluster).await {
        let _ = meta.shutdown().await;
        return Err(e);
    }
    Ok(meta)
}

/// Founds, joins or rejoins the cluster, then waits for a leader with a quorum.
async fn enter(meta: &MetaNode, cluster: &MetadataCluster) -> Result<()> {
    let voters = cluster.voters();
    if !meta.is_member().await? {
        if cluster.is_founding_voter() {
            meta.bootstrap(voters.clone())
                .await
                .context("founding the metadata cluster")?;
        } else {
            tracing::info!(id = cluster.member_id, voters = ?voters, "asking the metadata cluster to add this member");
            // It asks until it is added (by its asking, or by `tessera
            // admin member add` when the voters do not know it yet).
            while !meta.is_member().await? {
                let deadline = Instant::now() + WAIT_LOG_EVERY;
                if let Err(e) = meta.join(&voters, deadline).await {
                    tracing::warn!(error = %e, voters = ?voters, "no voter added this member yet; asking again");
                }
            }
        }
    }
    let mut next_log = Instant::now() + WAIT_LOG_EVERY;
    loop {
        let status = meta.status();
        if status.has_quorum && status.leader.is_some() {
            tracing::info!(id = status.id, leader = ?status.leader, voters = ?status.voters, learners = ?status.learners, "metadata cluster reached");
            return Ok(());
        }
        if Instant::now() >= next_log {
            tracing::warn!(id = status.id, voters = ?status.voters, leader = ?status.leader, "waiting for a metadata leader with a quorum");
            next_log = Instant::now() + WAIT_LOG_EVERY;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Who a member's data dir belongs to (`member.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberIdentity {
    /// The member id.
    id: u64,
    /// Its site.
    site: Option<String>,
    /// SHA-256 of the cluster CA certificate (PEM, trimmed).
    ca_sha256: String,
}

impl MemberIdentity {
    fn path(root: &Path) -> PathBuf {
        root.join(IDENTITY_FILE)
    }

    /// Writes this identity into a data dir that has none, or checks that
    /// the one there is this.
    fn check_or_write(&self, root: &Path) -> Result<()> {
        let path = Self::path(root);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = toml::to_string(self).context("encoding the member identity")?;
                return write_private_file(&path, &text)
                    .with_context(|| format!("writing {}", path.display()));
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let stored: MemberIdentity =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if stored.id != self.id {
            bail!(
                "the data dir {} belongs to metadata member {}, but member_id is {}: \
                 give this process its own data dir, or fix member_id",
                root.display(),
                stored.id,
                self.id
            );
        }
        if stored.ca_sha256 != self.ca_sha256 {
            bail!(
                "the data dir {} belongs to a cluster with another CA than cluster_ca: \
                 this member's certificates come from another cluster",
                root.display()
            );
        }
        if stored.site != self.site {
            bail!(
                "metadata member {} stands in site {:?}, but the config says {:?}: \
                 a member does not move between sites (remove it and add a new one)",
                self.id,
                stored.site.unwrap_or_default(),
                self.site.clone().unwrap_or_default()
            );
        }
        Ok(())
    }
}
