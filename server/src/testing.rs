//! In-process servers for tests.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let server = tessera_server::testing::TestServer::start().await?;
//! println!("S3 at {} as {}", server.s3_url(), server.credentials().access_key);
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! An `aws-sdk-s3` client for a [`TestServer`] is built in the integration
//! tests' shared module, `server/tests/common/mod.rs` (the SDK is a
//! dev-dependency only).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Result;
use tempfile::TempDir;

use crate::{Config, Credentials, RunningServer, Server};

/// Access key id of every test server's root key.
pub const TEST_ACCESS_KEY: &str = "TKTESTROOT0000000000";
/// Secret key of every test server's root key.
pub const TEST_SECRET_KEY: &str = "tessera-test-secret-key-0000000000000000";

/// A server on random loopback ports with its data in a temporary directory
/// (removed on drop), root credentials [`TEST_ACCESS_KEY`] / [`TEST_SECRET_KEY`].
#[derive(Debug)]
pub struct TestServer {
    server: Option<RunningServer>,
    config: Config,
    dir: TempDir,
}

impl TestServer {
    /// Starts the embedded default (six disks, 4+2) in a fresh temporary directory.
    pub async fn start() -> Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` changed its configuration (data dir,
    /// ports and credentials are already set for a test).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("tessera-test-").tempdir()?;
        Self::start_in(dir, adjust).await
    }

    /// Starts a server like [`start_with`](Self::start_with) on `dir`, a
    /// data directory prepared beforehand (one an earlier release wrote,
    /// say), which it then owns.
    pub async fn start_in(dir: TempDir, adjust: impl FnOnce(&mut Config)) -> Result<Self> {
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let server = Server::start(config.clone()).await?;
        Ok(TestServer {
            server: Some(server),
            config,
            dir,
        })
    }

    /// Stops the server and starts a new one with the same configuration
    /// and data directory (on new ports), as a restart would.
    pub async fn restart(&mut self) -> Result<()> {
        self.restart_after(|_| {}).await
    }

    /// Stops the server, lets `between` change its data directory (as a
    /// crash or an operator might have left it), and starts it again.
    pub async fn restart_after(&mut self, between: impl FnOnce(&Path)) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.shutdown().await?;
        }
        between(self.dir.path());
        self.server = Some(Server::start(self.config.clone()).await?);
        Ok(())
    }

    /// The running server.
    ///
    /// # Panics
    /// Only if a failed [`restart`](Self::restart) left no server running.
    #[allow(clippy::expect_used)]
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("test server is running")
    }

    /// `http://127.0.0.1:PORT` (or `https://` with TLS) of the S3 listener.
    pub fn s3_url(&self) -> String {
        self.server().s3_url()
    }

    /// Address of the S3 listener.
    pub fn s3_addr(&self) -> SocketAddr {
        self.server().s3_addr
    }

    /// `http://127.0.0.1:PORT` of the admin listener.
    pub fn admin_url(&self) -> String {
        self.server().admin_url()
    }

    /// The root credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.server().credentials
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Shuts the server down gracefully (the directory goes when `self` drops).
    pub async fn shutdown(mut self) -> Result<()> {
        match self.server.take() {
            Some(server) => server.shutdown().await,
            None => Ok(()),
        }
    }
}

/// The configuration of a test server on `dir`: loopback port 0 for both
/// listeners, the test root key, a short shutdown timeout, background jobs
/// and health probes every 200 ms, a GC grace of 300 ms.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::embedded(dir);
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.admin_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.credentials = Some(Credentials {
        access_key: TEST_ACCESS_KEY.to_owned(),
        secret_key: TEST_SECRET_KEY.to_owned(),
    });
    config.shutdown_timeout = std::time::Duration::from_secs(5);
    config.job_interval = std::time::Duration::from_millis(200);
    config.gc_grace = std::time::Duration::from_millis(300);
    config.health_interval = std::time::Duration::from_millis(200);
    config
}
