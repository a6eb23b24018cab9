//! Errors of setting up the cluster network.

/// Why TLS material or a server could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NetError {
    /// A certificate, key or TLS configuration was refused.
    #[error("tls: {0}")]
    Tls(String),
    /// A certificate is not the one a member should hold: another member's,
    /// or another CA's.
    #[error("{0}")]
    Identity(String),
}
