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
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Largest request body accepted (a snapshot chunk or a batch of entries).
const MAX_BODY: usize = 64 << 20;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server does with one decoded request.
pub trait Service: Send + Sync + 'static {
    /// Answers `body` sent to `path` with an encoded reply, or an HTTP status and reason.
    fn handle(
        &self,
        path: String,
        body: Bytes,
    ) -> impl Future<Output = Result<Vec<u8>, (StatusCode, String)>> + Send;
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
    pub fn start<S: Service>(
        name: &'static str,
        listener: tokio::net::TcpListener,
        tls: Arc<rustls::ServerConfig>,
        service: Arc<S>,
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
                            conns.spawn(serve_connection(name, tcp, peer, acceptor.clone(), service.clone()));
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

async fn serve_connection<S: Service>(
    name: &'static str,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    service: Arc<S>,
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
    let svc = service_fn(move |req: Request<Incoming>| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(dispatch(service.as_ref(), req).await) }
    });
    if let Err(e) = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), svc)
        .await
    {
        tracing::debug!(server = name, %peer, error = %e, "rpc connection ended");
    }
}

async fn dispatch<S: Service>(service: &S, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(StatusCode::BAD_REQUEST, Bytes::from(e.to_string())),
    };
    match service.handle(path, body).await {
        Ok(bytes) => reply(StatusCode::OK, Bytes::from(bytes)),
        Err((status, reason)) => reply(status, Bytes::from(reason)),
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp
}
