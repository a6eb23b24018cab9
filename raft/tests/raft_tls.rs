//! Raft RPC accepts only holders of a certificate from the cluster CA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod raft_common;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use raft_common::Cluster;
use rustls::pki_types::ServerName;
use tessera_raft::tls::{ClusterCa, ClusterTls, MEMBER_SERVER_NAME};

/// POSTs to a member's log-state RPC with the given client identity.
async fn probe(
    addr: SocketAddr,
    ca_pem: &str,
    identity: Option<&ClusterTls>,
) -> Result<http::StatusCode, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match identity {
        Some(id) => {
            let certs = rustls_pemfile::certs(&mut id.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = rustls_pemfile::private_key(&mut id.key_pem.as_bytes())
                .unwrap()
                .unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from(MEMBER_SERVER_NAME).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::post(format!("https://{addr}/meta/log-state"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    resp.into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_reject_peers_without_a_cluster_certificate() {
    let cluster = Cluster::start(1, |_| {}).await;
    let addr = cluster.nodes[&1].rpc_addr().unwrap();

    // A holder of a cluster certificate is served.
    let member = cluster.ca.issue("member-9", &[]).unwrap();
    assert_eq!(
        probe(addr, &cluster.ca.cert_pem, Some(&member)).await,
        Ok(http::StatusCode::OK)
    );

    // A certificate from another CA is refused.
    let stranger = ClusterCa::generate("stranger CA")
        .unwrap()
        .issue("member-9", &[])
        .unwrap();
    assert!(
        probe(addr, &cluster.ca.cert_pem, Some(&stranger))
            .await
            .is_err()
    );

    // No client certificate at all is refused.
    assert!(probe(addr, &cluster.ca.cert_pem, None).await.is_err());

    // And a member does not trust a server outside the cluster CA: a member
    // holding the stranger's CA cannot even reach this one.
    assert!(
        probe(addr, &stranger.ca_pem, Some(&stranger))
            .await
            .is_err()
    );

    // The member still works.
    cluster.nodes[&1]
        .write(raft_common::create_bucket("b"))
        .await
        .unwrap();
    cluster.shutdown().await;
}
