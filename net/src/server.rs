//! The RPC server: HTTP/2 over TLS that requires a client certificate from
//! the cluster CA. A peer without one fails the handshake and is never
//! heard; each request is a body POSTed to a path the [`Service`] knows
//! (postcard, see [`crate::wire`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::body::{Body, full};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server does with one request: answers it, streaming bodies
/// both ways as they come.
pub trait HttpService: Send + Sync + 'static {
    /// The answer to `req` (errors are answers too: a status and a reason).
    fn serve(&self, req: Request<Incoming>) -> impl Future<Output = Response<Body>> + Send;
}

/// A service of whole messages: each request body read (up to 64 MiB) and
/// handed over with its path; serve it with [`Unary`].
pub trait Service: Send + Sync + 'static {
    /// Answers `body` sent to `path` with an encoded reply, or an HTTP status and reason.
    fn handle(
        &self,
        path: String,
        body: Bytes,
    ) -> impl Future<Output = Result<Vec<u8>, (StatusCode, String)>> + Send;
}

/// Serves a [`Service`] of whole messages as an [`HttpService`].
pub struct Unary<S>(pub Arc<S>);

impl<S: Service> HttpService for Unary<S> {
    async fn serve(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let body = match http_body_util::Limited::new(req.into_body(), crate::MAX_MESSAGE)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => return reply(StatusCode::BAD_REQUEST, e.to_string()),
        };
        match self.0.handle(path, body).await {
            Ok(bytes) => Response::new(full(bytes)),
            Err((status, reason)) => reply(status, reason),
        }
    }
}

/// An answer of `status` with `reason` as its text body.
pub fn reply(status: StatusCode, reason: impl Into<String>) -> Response<Body> {
    let mut resp = Response::new(full(reason.into()));
    *resp.status_mut() = status;
    resp
}

/// Which clients a server answers, beyond holding a certificate from the
/// cluster CA (checked at the handshake).
pub trait ClientCheck: Send + Sync + 'static {
    /// Whether the client that presented `cert` (its own certificate,
    /// already verified against the CA) may be served.
    fn allows(&self, cert: &rustls::pki_types::CertificateDer<'_>) -> bool;
}

/// Every holder of a certificate from the cluster CA.
struct AnyClient;

impl ClientCheck for AnyClient {
    fn allows(&self, _: &rustls::pki_types::CertificateDer<'_>) -> bool {
        true
    }
}

/// A running RPC server; stops on [`RpcServer::stop`].
pub struct RpcServer {
    name: &'static str,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RpcServer {
    /// Serves `service` on `listener` to holders of a cluster certificate
    /// (`tls` from [`crate::tls::server_config`]). `name` labels its logs
    /// and metrics (`tessera_rpc_rejected_total{server}`).
    pub fn start<S: HttpService>(
        name: &'static str,
        listener: tokio::net::TcpListener,
        tls: Arc<rustls::ServerConfig>,
        service: Arc<S>,
    ) -> RpcServer {
        Self::start_checked(name, listener, tls, service, Arc::new(AnyClient))
    }

    /// [`RpcServer::start`], answering only the clients `check` allows; a
    /// connection of any other is dropped after the handshake (and counted
    /// in `tessera_rpc_rejected_total{server}`).
    pub fn start_checked<S: HttpService>(
        name: &'static str,
        listener: tokio::net::TcpListener,
        tls: Arc<rustls::ServerConfig>,
        service: Arc<S>,
        check: Arc<dyn ClientCheck>,
    ) -> RpcServer {
        let (stop, mut stopped) = watch::channel(false);
        let acceptor = TlsAcceptor::from(tls);
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, peer)) => {
                            conns.spawn(serve_connection(name, tcp, peer, acceptor.clone(), service.clone(), check.clone()));
                        }
                        Err(e) => {
                            tracing::warn!(server = name, error = %e, "rpc accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
            conns.abort_all();
        });
        RpcServer { name, stop, task }
    }

    /// Stops accepting and drops every open connection.
    pub async fn stop(self) {
        tracing::debug!(server = self.name, "rpc server stopping");
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn serve_connection<S: HttpService>(
    name: &'static str,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    service: Arc<S>,
    check: Arc<dyn ClientCheck>,
) {
    let _ = tcp.set_nodelay(true);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(server = name, %peer, error = %e, "rejected peer: tls handshake failed");
            metrics::counter!("tessera_rpc_rejected_total", "server" => name).increment(1);
            return;
        }
        Err(_) => {
            tracing::warn!(server = name, %peer, "rejected peer: tls handshake timed out");
            metrics::counter!("tessera_rpc_rejected_total", "server" => name).increment(1);
            return;
        }
    };
    let allowed = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .is_some_and(|cert| check.allows(cert));
    if !allowed {
        tracing::warn!(server = name, %peer, "rejected peer: its certificate is not one this server answers");
        metrics::counter!("tessera_rpc_rejected_total", "server" => name).increment(1);
        return;
    }
    let svc = service_fn(move |req: Request<Incoming>| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(service.serve(req).await) }
    });
    if let Err(e) = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(crate::STREAM_WINDOW)
        .initial_connection_window_size(crate::CONNECTION_WINDOW)
        .max_frame_size(crate::MAX_FRAME)
        .serve_connection(TokioIo::new(stream), svc)
        .await
    {
        tracing::debug!(server = name, %peer, error = %e, "rpc connection ended");
    }
}
