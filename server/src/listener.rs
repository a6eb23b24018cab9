//! Serving an HTTP service on a TCP listener: HTTP/1.1 and HTTP/2 (hyper-util
//! auto), optional TLS, and graceful shutdown — stop accepting, let
//! in-flight requests finish within a bounded wait, then drop what is left.
//!
//! Clients cannot hold connections for free: a connection is closed when
//! its request headers (or, first, the bytes that tell HTTP/1 from HTTP/2)
//! do not arrive within the header timeout, which also ends idle HTTP/1
//! keep-alive connections; and at most [`Limits::max_connections`] are open
//! at once. Over the cap the listener stops accepting until one closes, so
//! further clients wait in the kernel's accept queue (and, when it is full,
//! retry their SYN) instead of being reset: a burst of clients is served a
//! little later rather than failed, and refusing costs nothing here.
//! `tessera_open_connections{listener}` counts the connections open, beside
//! the limit, `tessera_connection_limit`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a client gets to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes that tell an HTTP/2 connection (its preface) from an HTTP/1 one.
const PREFACE_LEN: usize = 24;

/// A boxed error, as hyper wants it.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The connection a request came over, set as an extension of every
/// request: bucket policies test `aws:SourceIp` and `aws:SecureTransport`
/// against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnInfo {
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// Whether the connection is TLS.
    pub(crate) tls: bool,
}

/// A service whose requests carry their connection's [`ConnInfo`].
#[derive(Clone)]
struct WithConn<S> {
    inner: S,
    conn: ConnInfo,
}

impl<S> hyper::service::Service<Request<Incoming>> for WithConn<S>
where
    S: hyper::service::Service<Request<Incoming>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.conn);
        self.inner.call(req)
    }
}

/// What one listener allows its clients.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests.
    pub grace: Duration,
}

/// Serves `service` on `listener` until `stop` is cancelled, then drains
/// open connections for at most `limits.grace`. The returned task ends when done.
pub(crate) fn spawn<S, B>(
    name: &'static str,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    service: S,
    stop: CancellationToken,
    limits: Limits,
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
    crate::metrics::set_connection_limit(name, limits.max_connections);
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        let builder = Arc::new(builder);
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let mut saturated = false;
        loop {
            let slot = match Arc::clone(&slots).try_acquire_owned() {
                Ok(slot) => {
                    saturated = false;
                    slot
                }
                Err(_) => {
                    if !saturated {
                        tracing::warn!(
                            listener = name,
                            max_connections = limits.max_connections,
                            "connection limit reached; new connections wait"
                        );
                        saturated = true;
                    }
                    tokio::select! {
                        () = stop.cancelled() => break,
                        slot = Arc::clone(&slots).acquire_owned() => match slot {
                            Ok(slot) => slot,
                            Err(_) => break,
                        },
                    }
                }
            };
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
            let open = crate::metrics::connection_opened(name);
            let watcher = graceful.watcher();
            let builder = Arc::clone(&builder);
            let acceptor = acceptor.clone();
            let service = WithConn {
                inner: service.clone(),
                conn: ConnInfo {
                    peer,
                    tls: acceptor.is_some(),
                },
            };
            let timeout = limits.header_timeout;
            tokio::spawn(async move {
                let served = match acceptor {
                    None => {
                        let io = FirstBytes::new(stream, timeout);
                        watcher.watch(serve(&builder, io, service)).await
                    }
                    Some(acceptor) => {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls)) => {
                                let io = FirstBytes::new(tls, timeout);
                                watcher.watch(serve(&builder, io, service)).await
                            }
                            Ok(Err(e)) => Err(e.into()),
                            Err(_) => Err("tls handshake timed out".into()),
                        }
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(listener = name, %peer, error = %e, "connection ended with an error");
                }
                drop(slot);
                drop(open);
            });
        }
        drop(listener);
        tracing::debug!(
            listener = name,
            open = graceful.count(),
            "stopped accepting; draining"
        );
        if tokio::time::timeout(limits.grace, graceful.shutdown())
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

/// A connection's stream whose first [`PREFACE_LEN`] bytes must arrive
/// before a deadline: hyper's header timeout only runs once hyper-util has
/// told HTTP/1 from HTTP/2 by them, and a client that sends nothing (or
/// half a preface) would otherwise hold its connection for ever.
struct FirstBytes<I> {
    io: I,
    /// Bytes still due and their deadline; `None` once they arrived.
    due: Option<(usize, Pin<Box<tokio::time::Sleep>>)>,
}

impl<I> FirstBytes<I> {
    fn new(io: I, timeout: Duration) -> Self {
        FirstBytes {
            io,
            due: Some((PREFACE_LEN, Box::pin(tokio::time::sleep(timeout)))),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FirstBytes<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some((left, _)) = &mut this.due {
                    let got = buf.filled().len() - before;
                    // Zero bytes: the client closed; nothing more is due.
                    if got == 0 || got >= *left {
                        this.due = None;
                    } else {
                        *left -= got;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = this
                    .due
                    .as_mut()
                    .is_some_and(|(_, deadline)| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request within the header timeout",
                    )));
                }
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FirstBytes<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
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
