//! The admin listener: health endpoints, Prometheus metrics and status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_s3::primitives::ByteStream;
use tessera_server::testing::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_status() {
    let server = TestServer::start().await.unwrap();
    let admin = server.admin_url();

    let (status, body) = common::http_get(&format!("{admin}/health/live")).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = common::http_get(&format!("{admin}/health/ready")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("stores up: 6 of 6"), "{body}");

    // Some S3 traffic, then the metrics show it.
    let client = common::s3_client(&server);
    client
        .create_bucket()
        .bucket("metered")
        .send()
        .await
        .unwrap();
    client
        .put_object()
        .bucket("metered")
        .key("k")
        .body(ByteStream::from(vec![7u8; 100_000]))
        .send()
        .await
        .unwrap();
    let (status, metrics) = common::http_get(&format!("{admin}/metrics")).await;
    assert_eq!(status, 200);
    for needle in ["tessera_raft_is_leader 1", "tessera_raft_has_leader 1"] {
        assert!(
            metrics.contains(needle),
            "missing {needle:?} in:\n{metrics}"
        );
    }

    // Stores are labelled by the ids minted into their directories, the
    // same in metrics and in the status.
    let status = server.server().admin_client().status().await.unwrap();
    assert!(status.ready);
    assert_eq!(status.buckets, 1);
    assert_eq!(status.keys, 1);
    let mut ids: Vec<String> = (1..=6)
        .map(|n| common::store_id(server.data_dir(), n))
        .collect();
    ids.sort();
    let mut shown: Vec<String> = status.stores.iter().map(|s| s.id.clone()).collect();
    shown.sort();
    assert_eq!(shown, ids);
    assert!(status.stores.iter().all(|s| s.up));
    for id in &ids {
        assert!(id.starts_with("st-") && id.len() == 19, "{id}");
        let needle = format!("tessera_store_up{{store=\"{id}\"}} 1");
        assert!(
            metrics.contains(&needle),
            "missing {needle:?} in:\n{metrics}"
        );
    }
    assert_eq!(status.raft.leader, Some(status.raft.id));

    // Metrics count requests by operation, including refused ones.
    for needle in [
        "tessera_s3_requests_total{op=\"CreateBucket\",status=\"200\"} 1",
        "tessera_s3_requests_total{op=\"PutObject\",status=\"200\"} 1",
        "tessera_s3_request_duration_seconds_bucket{op=\"PutObject\"",
        "tessera_s3_bytes_in_total 100000",
        "tessera_memory_budget_capacity_bytes{budget=\"write\"} 67108864",
        "tessera_memory_budget_capacity_bytes{budget=\"read\"} 33554432",
        "tessera_memory_budget_reserved_bytes{budget=\"write\"}",
    ] {
        assert!(
            metrics.contains(needle),
            "missing {needle:?} in:\n{metrics}"
        );
    }

    let (status, _) = common::http_get(&format!("{admin}/nothing-here")).await;
    assert_eq!(status, 404);
    let (status, _) = common::http_get(&format!("{admin}/admin/v1/status")).await;
    assert_eq!(status, 401);

    // Paths where a route's prefix and suffix overlap name nothing: 404,
    // the connection kept.
    let token = server.server().admin_token.clone();
    for (method, path) in [
        ("POST", "/admin/v1/jobs/start"),
        ("POST", "/admin/v1/nodes/drain"),
        ("POST", "/admin/v1/members/promote"),
        ("GET", "/admin/v1/buckets/storage-policy"),
    ] {
        let status = admin_call(method, &format!("{admin}{path}"), &token).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    server.shutdown().await.unwrap();
}

/// The status of an admin API call with the bearer `token`.
async fn admin_call(method: &str, url: &str, token: &str) -> u16 {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::new())
        .unwrap();
    client.request(req).await.unwrap().status().as_u16()
}

/// Waits (up to 5 s) for `/health/ready` to answer `want`; returns the body.
async fn wait_ready(admin: &str, want: u16) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        let (status, body) = common::http_get(&format!("{admin}/health/ready")).await;
        if status == want {
            return body;
        }
        last = body;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("/health/ready never answered {want}: {last}");
}

/// One dead disk of six leaves 4 + 2 writes going (five shards, the write
/// quorum): still ready, the disk shown down. A second one stops writes:
/// not ready until a disk is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_once_too_few_disks_are_left_for_a_write() {
    let server = TestServer::start().await.unwrap();
    let admin = server.admin_url();
    wait_ready(&admin, 200).await;
    let away = |n: u32| {
        let shards = server.data_dir().join(format!("disks/disk-{n}/shards"));
        let moved = server
            .data_dir()
            .join(format!("disks/disk-{n}/shards.away"));
        (shards, moved)
    };
    let (shards3, moved3) = away(3);
    std::fs::rename(&shards3, &moved3).unwrap();
    let disk3 = common::store_id(server.data_dir(), 3);
    let series = format!("tessera_store_up{{store=\"{disk3}\"}}");
    // Store ids are unique, so the metric of this server's disk 3 is its
    // own, even with the other test's server in the same process.
    for _ in 0..50 {
        if common::metric(&server, &series).await == Some(0.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(common::metric(&server, &series).await, Some(0.0));
    let body = wait_ready(&admin, 200).await;
    assert!(body.contains("stores up: 5 of 6 (need 5)"), "{body}");
    let status = server.server().admin_client().status().await.unwrap();
    assert!(status.ready);
    let down: Vec<&str> = status
        .stores
        .iter()
        .filter(|s| !s.up)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(down, [disk3.as_str()]);

    let (shards4, moved4) = away(4);
    std::fs::rename(&shards4, &moved4).unwrap();
    let body = wait_ready(&admin, 503).await;
    assert!(body.contains("stores up: 4 of 6 (need 5)"), "{body}");
    assert!(!server.server().admin_client().status().await.unwrap().ready);
    std::fs::rename(&moved4, &shards4).unwrap();
    wait_ready(&admin, 200).await;
    std::fs::rename(&moved3, &shards3).unwrap();
    server.shutdown().await.unwrap();
}
