//! The data directory is the server's alone: everything it creates there,
//! from the directory itself to the raft files and every shard file, is
//! owner-only (directories 0700, files 0600), whatever the umask.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use aws_sdk_s3::primitives::ByteStream;
use tessera_server::testing::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_under_the_data_dir_is_owner_only() {
    // A data directory the server creates itself, below the test's own.
    let server = TestServer::start_with(|c| c.data_dir = c.data_dir.join("fresh"))
        .await
        .unwrap();
    let client = common::s3_client(&server);
    client
        .create_bucket()
        .bucket("private")
        .send()
        .await
        .unwrap();
    // Well above the inline threshold: stored as shard files on the disks.
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    client
        .put_object()
        .bucket("private")
        .key("large")
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();

    let root = server.data_dir().join("fresh");
    let mut entries = common::tree(&root);
    entries.push(root.clone());
    let shards = entries
        .iter()
        .filter(|p| p.is_file() && p.to_string_lossy().contains("/shards/"))
        .count();
    assert!(
        shards >= 6,
        "the object was stored as shard files: {shards}"
    );
    assert!(root.join("meta").is_dir());
    for path in &entries {
        let mode = std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "{} has mode {:o}",
            path.display(),
            mode & 0o777
        );
    }
    server.shutdown().await.unwrap();
}
