//! The load generator's core against a real Tessera server started
//! in-process on loopback: every workload runs without errors, reads back
//! the bytes it wrote, lists what it uploaded and cleans up after itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use compat_tests::bench::{
    BenchConfig, Mix, OpKind, Report, RequestOptions, Target, Workload, run,
};
use tessera_server::testing::{TEST_ACCESS_KEY, TEST_SECRET_KEY, TestServer};

fn config(server: &TestServer, bucket: &str, workload: Workload, size: u64) -> BenchConfig {
    BenchConfig {
        target: Target {
            endpoint: server.s3_url(),
            access_key: TEST_ACCESS_KEY.to_owned(),
            secret_key: TEST_SECRET_KEY.to_owned(),
            region: "us-east-1".to_owned(),
            aws_env: false,
        },
        options: RequestOptions {
            sign_payload: false,
            checksums: false,
            multipart_size: None,
            part_concurrency: 2,
            verify: true,
        },
        bucket: bucket.to_owned(),
        workload,
        size,
        objects: 8,
        ops: None,
        duration: None,
        rate: None,
        concurrency: 4,
        warmup: None,
        mix: Mix::default(),
        keep: false,
        server_pid: Some(std::process::id()),
        cpu_pids: vec![std::process::id()],
    }
}

fn sdk_client(server: &TestServer) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            TEST_ACCESS_KEY,
            TEST_SECRET_KEY,
            None,
            None,
            "test",
        ))
        .endpoint_url(server.s3_url())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn run_clean(config: &BenchConfig) -> Report {
    let report = run(config).await.unwrap();
    assert_eq!(report.errors(), 0, "{report}");
    assert_eq!(report.cleanup_error, None, "{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_reads_back_what_put_wrote_and_cleans_up() {
    let server = TestServer::start().await.unwrap();
    let report = run_clean(&config(&server, "bench-get", Workload::Get, 100_000)).await;

    let put = report.summary("prepare", OpKind::Put).unwrap();
    assert_eq!((put.ops, put.bytes), (8, 800_000));
    let get = report.summary("get", OpKind::Get).unwrap();
    assert_eq!((get.ops, get.bytes), (8, 800_000));
    assert!(get.p50_ms > 0.0 && get.p50_ms <= get.p99_ms && get.p99_ms <= get.max_ms);
    assert!(report.server_memory.as_ref().unwrap().peak_rss_bytes > 0);
    assert!(report.phases.iter().all(|p| p.peak_rss_bytes.is_some()));
    // The server runs in this process: its CPU time is this process's.
    for phase in &report.phases {
        let cpu = phase.server_cpu_s.get(&std::process::id()).copied();
        assert!(cpu.is_some_and(|s| s >= 0.0), "{}: {cpu:?}", phase.name);
    }

    // The run created the bucket, so it deleted it again.
    let buckets = sdk_client(&server).list_buckets().send().await.unwrap();
    assert!(buckets.buckets().is_empty(), "{buckets:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_puts_read_back_whole() {
    let server = TestServer::start().await.unwrap();
    let mut config = config(&server, "bench-multipart", Workload::Get, (5 << 20) + 4096);
    config.objects = 1;
    config.options.multipart_size = Some(5 << 20);
    let report = run_clean(&config).await;
    let get = report.summary("get", OpKind::Get).unwrap();
    assert_eq!((get.ops, get.bytes), (1, (5 << 20) + 4096));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_mixed_see_their_objects_and_keep_leaves_them() {
    let server = TestServer::start().await.unwrap();
    let client = sdk_client(&server);
    client
        .create_bucket()
        .bucket("bench-list")
        .send()
        .await
        .unwrap();

    let mut list = config(&server, "bench-list", Workload::List, 1024);
    list.objects = 30;
    list.ops = Some(4);
    let report = run_clean(&list).await;
    let listed = report.summary("list", OpKind::List).unwrap();
    assert_eq!((listed.ops, listed.keys_listed), (4, 120));

    let mut mixed = config(&server, "bench-list", Workload::Mixed, 1024);
    mixed.ops = Some(40);
    mixed.mix = "get=2,put=1,delete=1,list=1".parse().unwrap();
    mixed.keep = true;
    let report = run_clean(&mixed).await;
    let mixed_phase = report.phases.iter().find(|p| p.name == "mixed").unwrap();
    let (ops, puts, deletes) = (
        mixed_phase.ops.values().map(|s| s.ops).sum::<u64>(),
        mixed_phase.ops.get(&OpKind::Put).map_or(0, |s| s.ops),
        mixed_phase.ops.get(&OpKind::Delete).map_or(0, |s| s.ops),
    );
    assert_eq!(ops, 40);

    // The list run cleaned up; the kept mixed run left exactly its live objects.
    let left = client
        .list_objects_v2()
        .bucket("bench-list")
        .send()
        .await
        .unwrap();
    assert_eq!(
        left.key_count(),
        Some(i32::try_from(8 + puts - deletes).unwrap())
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_spreads_the_operations_over_time() {
    let server = TestServer::start().await.unwrap();
    let mut paced = config(&server, "bench-rate", Workload::Put, 1_000);
    paced.ops = Some(10);
    paced.rate = Some(20.0);
    let report = run_clean(&paced).await;
    let put = report.phases.iter().find(|p| p.name == "put").unwrap();
    assert_eq!(report.summary("put", OpKind::Put).unwrap().ops, 10);
    // The tenth PUT starts 9 / 20 s into the phase at the earliest, however
    // fast the server is (four workers would do ten small PUTs far sooner).
    assert!(put.elapsed_s >= 0.45, "{}", put.elapsed_s);
}
