//! A raft member's RPC answers only holders of a certificate from the
//! cluster CA (the refusals themselves are tested in tessera-net).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod raft_common;

use std::time::Duration;

use raft_common::Cluster;
use tessera_net::{CallError, ClusterCa, ClusterTls, RpcClient, tls::client_config};
use tessera_raft::types::LogId;

/// Asks a member for its last log id (the forced-failover RPC) as `client`.
async fn log_state(client: &RpcClient, addr: &str) -> Result<Option<LogId>, CallError> {
    client
        .call(1, addr, "/meta/log-state", &(), Duration::from_secs(5))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_reject_peers_without_a_cluster_certificate() {
    let cluster = Cluster::start(1, |_| {}).await;
    let addr = cluster.nodes[&1].rpc_addr().unwrap().to_string();

    let member = cluster.ca.issue("member-9", &[]).unwrap();
    let member = RpcClient::new(Some(client_config(&member).unwrap()));
    assert!(log_state(&member, &addr).await.is_ok());

    // A certificate from another CA, even from a client that trusts ours.
    let stranger = ClusterCa::generate("stranger CA")
        .unwrap()
        .issue("member-9", &[])
        .unwrap();
    let stranger = ClusterTls {
        ca_pem: cluster.ca.cert_pem.clone(),
        ..stranger
    };
    let stranger = RpcClient::new(Some(client_config(&stranger).unwrap()));
    assert!(log_state(&stranger, &addr).await.is_err());

    // The member still works.
    cluster.nodes[&1]
        .write(raft_common::create_bucket("b"))
        .await
        .unwrap();
    cluster.shutdown().await;
}
