//! Serving an HTTP service on a TCP listener: HTTP/1.1 and HTTP/2 (hyper-util
//! auto), optional TLS, and graceful shutdown — stop accepting, let
//! in-flight requests finish within a bounded wait, then drop what is left.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a client gets to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A boxed error, as hyper wants it.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `service` on `listener` until `stop` is cancelled, then drains
/// open connections for at most `grace`. The returned task ends when done.
pub(crate) fn spawn<S, B>(
    name: &'static str,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    service: S,
    stop: CancellationToken,
    grace: Duration,
) -> JoinHandle<()>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
        loop {
            let (stream, peer) = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(listener = name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let watcher = graceful.watcher();
            let builder = Arc::clone(&builder);
            let service = service.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let served = match acceptor {
                    None => watcher.watch(serve(&builder, stream, service)).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls)) => watcher.watch(serve(&builder, tls, service)).await,
                            Ok(Err(e)) => Err(e.into()),
                            Err(_) => Err("tls handshake timed out".into()),
                        }
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(listener = name, %peer, error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        tracing::debug!(
            listener = name,
            open = graceful.count(),
            "stopped accepting; draining"
        );
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                listener = name,
                "in-flight requests did not finish in time; closing"
            );
        }
    })
}

/// One connection, owned so the graceful watcher can hold it.
fn serve<I, S, B>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
) -> auto::Connection<'static, TokioIo<I>, S, TokioExecutor>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned()
}

/// Binds a TCP listener with a clear error.
pub(crate) async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener on {addr}"))
}
