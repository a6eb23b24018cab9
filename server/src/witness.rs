//! `tessera serve --role witness`: a metadata voter in a third place, so
//! that losing either of two sites leaves a quorum. It serves no S3, holds
//! no storage and runs no jobs: only its raft member and the admin listener
//! (`/metrics`, `/health/*`, `tessera admin member`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tessera_raft::node::MetaNode;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::http::{AdminState, WriteNeed};
use crate::config::{Config, Role};
use crate::datadir::DataDir;
use crate::placement::StoreSet;
use crate::workers::evacuate::Evacuated;
use crate::workers::job::Jobs;
use crate::{listener, members, metrics};

/// A running witness.
pub struct RunningWitness {
    /// Where the admin listener (metrics, health, member admin) listens.
    pub admin_addr: SocketAddr,
    /// Bearer token of the admin API.
    pub admin_token: String,
    meta: MetaNode,
    stop: CancellationToken,
    listener: JoinHandle<()>,
}

impl std::fmt::Debug for RunningWitness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningWitness")
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl RunningWitness {
    /// Starts the witness `config` describes (its role must be witness).
    pub async fn start(config: Config) -> Result<RunningWitness> {
        metrics::install();
        if config.role != Role::Witness {
            bail!("RunningWitness::start needs role = \"witness\"");
        }
        metrics::publish_certificates(&config);
        let dir = DataDir::open(&config.data_dir)?;
        let admin_token = dir.admin_token()?;
        let admin_listener = listener::bind(config.admin_listen, "admin").await?;
        let meta = members::start(&dir, &config).await?;
        let state = Arc::new(AdminState {
            meta: meta.clone(),
            stores: StoreSet::with_domains(Vec::new()),
            keys: None,
            jobs: Jobs::new(),
            lifecycle: crate::workers::lifecycle::LifecycleControl::new(),
            evacuated: Evacuated::new(),
            token: admin_token.clone(),
            write_need: WriteNeed::default(),
            nodes: None,
            founding: config.founding_members(),
            console: None,
        });
        let admin = hyper::service::service_fn(move |req| Arc::clone(&state).handle(req));
        let admin_addr = admin_listener.local_addr()?;
        let stop = CancellationToken::new();
        let limits = listener::Limits {
            header_timeout: config.header_timeout,
            max_connections: config.max_connections,
            grace: config.shutdown_timeout,
        };
        let listener = listener::spawn("admin", admin_listener, None, admin, stop.clone(), limits);
        tracing::info!(%admin_addr, member = meta.id(), "tessera witness serving");
        Ok(RunningWitness {
            admin_addr,
            admin_token,
            meta,
            stop,
            listener,
        })
    }

    /// The metadata member.
    pub fn meta(&self) -> &MetaNode {
        &self.meta
    }

    /// Stops the admin listener, then the metadata member.
    pub async fn shutdown(self) -> Result<()> {
        self.stop.cancel();
        self.listener.await.context("listener task")?;
        self.meta
            .shutdown()
            .await
            .context("shutting the metadata member down")?;
        tracing::info!("tessera witness stopped");
        Ok(())
    }
}
