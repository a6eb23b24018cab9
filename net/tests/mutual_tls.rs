//! The RPC server answers only holders of a certificate from the cluster CA,
//! and the client only trusts servers holding one: real sockets, real TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use tessera_net::tls::{client_config, server_config};
use tessera_net::{CallError, ClusterCa, ClusterTls, RpcClient, RpcServer, Service, Unary, wire};

/// Answers `/echo` with the decoded string it was sent, reversed, and
/// `/bytes` with as many bytes as the number it was sent.
struct Echo;

impl Service for Echo {
    async fn handle(&self, path: String, body: Bytes) -> Result<Vec<u8>, (StatusCode, String)> {
        let bad = |e: postcard::Error| (StatusCode::BAD_REQUEST, e.to_string());
        if path == "/bytes" {
            let len: usize = wire::decode(&body).map_err(bad)?;
            return wire::encode(&vec![7u8; len])
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
        }
        if path != "/echo" {
            return Err((StatusCode::NOT_FOUND, path));
        }
        let text: String =
            wire::decode(&body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        let reversed: String = text.chars().rev().collect();
        wire::encode(&reversed).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }
}

async fn serve(identity: &ClusterTls) -> (RpcServer, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let tls = server_config(identity).unwrap();
    (
        RpcServer::start("test", listener, tls, Arc::new(Unary(Arc::new(Echo)))),
        addr,
    )
}

async fn echo(client: &RpcClient, addr: &str, text: &str) -> Result<String, CallError> {
    client
        .call(1, addr, "/echo", &text.to_owned(), Duration::from_secs(5))
        .await
}

/// A client holding the cluster certificate `ca` issues to `name`.
fn member(ca: &ClusterCa, name: &str) -> RpcClient {
    RpcClient::new(Some(client_config(&ca.issue(name, &[]).unwrap()).unwrap()))
}

/// A client presenting no certificate at all, trusting `ca_pem`.
fn anonymous(ca_pem: &str) -> RpcClient {
    let mut roots = rustls::RootCertStore::empty();
    for cert in tessera_net::tls::certs(ca_pem).unwrap() {
        roots.add(cert).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    RpcClient::new(Some(Arc::new(cfg)))
}

#[tokio::test]
async fn only_holders_of_a_cluster_certificate_are_served() {
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let (server, addr) = serve(&ca.issue("node-1", &[]).unwrap()).await;

    // A holder of a cluster certificate is served, over one connection for
    // many calls.
    let member = member(&ca, "node-2");
    assert_eq!(echo(&member, &addr, "shard").await.unwrap(), "drahs");
    assert_eq!(echo(&member, &addr, "abc").await.unwrap(), "cba");

    // An unknown path is the service's error, carried back as a failure.
    let err = member
        .call::<_, String>(1, &addr, "/nope", &(), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Failed { reason, .. } if reason.starts_with("404")),
        "{err}"
    );

    // A certificate from another CA is refused, even from a client that
    // trusts our CA for the server side.
    let stranger = ClusterCa::generate("stranger CA")
        .unwrap()
        .issue("node-2", &[])
        .unwrap();
    let outsider = RpcClient::new(Some(
        client_config(&ClusterTls {
            ca_pem: ca.cert_pem.clone(),
            ..stranger.clone()
        })
        .unwrap(),
    ));
    assert!(echo(&outsider, &addr, "x").await.is_err());

    // No client certificate at all is refused.
    assert!(echo(&anonymous(&ca.cert_pem), &addr, "x").await.is_err());

    // A client of the stranger's cluster does not trust our server: the
    // handshake fails before anything is sent.
    let theirs = RpcClient::new(Some(client_config(&stranger).unwrap()));
    let err = echo(&theirs, &addr, "x").await.unwrap_err();
    assert!(err.not_sent(), "{err}");

    // The member is still served.
    assert_eq!(echo(&member, &addr, "ok").await.unwrap(), "ko");
    server.stop().await;
}

#[tokio::test]
async fn a_blocked_peer_is_never_called_until_healed() {
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let (server, addr) = serve(&ca.issue("node-1", &[]).unwrap()).await;
    let client = member(&ca, "node-2");
    assert_eq!(echo(&client, &addr, "ab").await.unwrap(), "ba");

    client.set_blocked(BTreeSet::from([1]));
    let err = echo(&client, &addr, "ab").await.unwrap_err();
    assert!(matches!(err, CallError::Blocked(1)), "{err}");
    assert!(err.not_sent());

    client.set_blocked(BTreeSet::new());
    assert_eq!(echo(&client, &addr, "ab").await.unwrap(), "ba");

    // A stopped server: the next call cannot connect.
    server.stop().await;
    let err = echo(&client, &addr, "ab").await.unwrap_err();
    assert!(
        err.not_sent() || matches!(err, CallError::Failed { .. }),
        "{err}"
    );
}

#[test]
fn a_certificate_names_its_member_and_chains_to_its_ca() {
    use tessera_net::tls::verify_member;
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let node = ca.issue("node-1", &[]).unwrap();
    verify_member(&node, "node-1").unwrap();
    let err = verify_member(&node, "node-2").unwrap_err().to_string();
    assert!(err.contains("issued to node-1, not to node-2"), "{err}");
    let stranger = ClusterTls {
        ca_pem: ca.cert_pem.clone(),
        ..ClusterCa::generate("stranger CA")
            .unwrap()
            .issue("node-1", &[])
            .unwrap()
    };
    let err = verify_member(&stranger, "node-1").unwrap_err().to_string();
    assert!(err.contains("not signed by the cluster CA"), "{err}");
    assert!(ca.issue("Node 1", &[]).is_err(), "names are DNS labels");
}

#[tokio::test]
async fn a_client_expecting_names_refuses_an_address_leading_to_another_member() {
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let (server, addr) = serve(&ca.issue("node-1", &[]).unwrap()).await;
    let identity = client_config(&ca.issue("gateway-1", &[]).unwrap()).unwrap();
    let client = RpcClient::new(Some(identity)).expecting_names("node");
    let call = |peer| {
        let (client, addr) = (&client, &addr);
        async move {
            client
                .call::<_, String>(
                    peer,
                    addr,
                    "/echo",
                    &"ab".to_owned(),
                    Duration::from_secs(5),
                )
                .await
        }
    };
    assert_eq!(call(1).await.unwrap(), "ba");
    // The same address taken for node 2: its certificate names node-1.
    let err = call(2).await.unwrap_err();
    assert!(matches!(err, CallError::Refused { .. }), "{err}");
    assert!(err.not_sent());
    // Node 1 is still served over its own connection.
    assert_eq!(call(1).await.unwrap(), "ba");
    server.stop().await;
}

#[tokio::test]
async fn an_answer_over_the_message_limit_is_refused() {
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let (server, addr) = serve(&ca.issue("node-1", &[]).unwrap()).await;
    let client = member(&ca, "node-2");
    let ask = |len: usize| {
        let (client, addr) = (&client, &addr);
        async move {
            client
                .call::<usize, Vec<u8>>(1, addr, "/bytes", &len, Duration::from_secs(20))
                .await
        }
    };
    assert_eq!(ask(1 << 20).await.unwrap().len(), 1 << 20);
    let refused = ask(tessera_net::MAX_MESSAGE).await;
    assert!(
        matches!(&refused, Err(CallError::Failed { reason, .. }) if reason.contains("length limit")),
        "{refused:?}"
    );
    server.stop().await;
}
