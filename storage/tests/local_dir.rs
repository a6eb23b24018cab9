//! LocalDir: the ShardStore contract and durability on a real filesystem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{collect, data};
use futures::StreamExt;
use tessera_storage::store::StoreIdentity;
use tessera_storage::{
    ByteStream, DataKey, Geometry, LocalDir, Memory, ObjectId, ObjectLocation, ReadOptions,
    ShardId, ShardStore, StorageError, WriteOptions, read_object, write_object,
};

fn id(seed: u8, part: u32, index: u16) -> ShardId {
    let mut object = [0u8; 16];
    object[0] = seed;
    object[15] = seed.wrapping_mul(7);
    ShardId {
        object: ObjectId(object),
        part,
        index,
    }
}

fn stream_of(bytes: Vec<u8>, chunk: usize) -> ByteStream {
    let chunks: Vec<_> = bytes
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

fn dir_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[tokio::test]
async fn put_get_stat_list_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalDir::open(tmp.path()).unwrap();
    assert!(StoreIdentity::is_minted_id(store.id()), "{}", store.id());
    let bytes = data(300_000, 1);
    let a = id(1, 1, 0);
    assert_eq!(
        store.put(a, stream_of(bytes.clone(), 7_000)).await.unwrap(),
        300_000
    );
    assert_eq!(
        collect(store.get(a, 0..u64::MAX).await.unwrap())
            .await
            .unwrap(),
        bytes
    );
    assert_eq!(
        collect(store.get(a, 1000..2500).await.unwrap())
            .await
            .unwrap(),
        &bytes[1000..2500]
    );
    assert_eq!(
        collect(store.get(a, 299_990..400_000).await.unwrap())
            .await
            .unwrap(),
        &bytes[299_990..]
    );
    assert_eq!(store.stat(a).await.unwrap().unwrap().size, 300_000);
    // Replacing a shard swaps the whole file.
    store.put(a, stream_of(vec![9; 10], 10)).await.unwrap();
    assert_eq!(
        collect(store.get(a, 0..100).await.unwrap()).await.unwrap(),
        vec![9; 10]
    );
    assert!(store.delete(a).await.unwrap());
    assert!(!store.delete(a).await.unwrap());
    assert!(store.stat(a).await.unwrap().is_none());
    assert!(matches!(
        store.get(a, 0..1).await,
        Err(StorageError::NotFound(_))
    ));
    let health = store.health().await.unwrap();
    assert!(health.ok && health.capacity >= health.free && health.capacity > 0);
}

#[tokio::test]
async fn shard_readers_fill_the_callers_buffers() {
    let tmp = tempfile::tempdir().unwrap();
    let local = LocalDir::open(tmp.path()).unwrap();
    let memory = Memory::new("mem-1");
    let bytes = data(300_000, 2);
    let a = id(2, 1, 0);
    // LocalDir reads with pread; Memory uses the default, a copy from `get`.
    for store in [&local as &dyn ShardStore, &memory] {
        store.put(a, stream_of(bytes.clone(), 7_000)).await.unwrap();
        let mut reader = store.open_reader(a, 1000..250_000).await.unwrap();
        let buf = reader.read(vec![1, 2, 3], 100_000).await.unwrap();
        assert_eq!(buf[..3], [1, 2, 3], "{}: appended", store.id());
        assert_eq!(buf[3..], bytes[1000..101_000], "{}", store.id());
        let buf = reader.read(Vec::with_capacity(1 << 20), 148_000).await;
        assert_eq!(buf.unwrap(), &bytes[101_000..249_000], "{}", store.id());
        assert!(
            reader.read(Vec::new(), 2000).await.is_err(),
            "{}: past the range",
            store.id()
        );
        let mut reader = store.open_reader(a, 299_000..400_000).await.unwrap();
        assert!(
            reader.read(Vec::new(), 5000).await.is_err(),
            "{}: past the file",
            store.id()
        );
        assert!(matches!(
            store.open_reader(id(3, 1, 0), 0..10).await.err(),
            Some(StorageError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn list_pages_in_id_order() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalDir::open(tmp.path()).unwrap();
    let mut ids = Vec::new();
    for seed in [3u8, 200, 17, 0, 255, 64] {
        for part in [1u32, 2, 70_000] {
            for index in [0u16, 1, 11] {
                let i = id(seed, part, index);
                store.put(i, stream_of(vec![seed; 3], 3)).await.unwrap();
                ids.push(i);
            }
        }
    }
    ids.sort();
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = store.list(after, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        after = page.last().copied();
        listed.extend(page);
    }
    assert_eq!(listed, ids);
}

#[tokio::test]
async fn failing_stream_leaves_no_shard_and_no_temp() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalDir::open(tmp.path()).unwrap();
    let a = id(5, 1, 2);
    let body = futures::stream::iter(vec![
        Ok(Bytes::from(vec![1u8; 100_000])),
        Err(StorageError::Timeout),
    ])
    .boxed();
    assert!(matches!(
        store.put(a, body).await,
        Err(StorageError::Timeout)
    ));
    assert!(store.stat(a).await.unwrap().is_none());
    assert!(store.list(None, 10).await.unwrap().is_empty());
    assert!(dir_entries(store.tmp_dir()).is_empty());
}

#[tokio::test]
async fn abandoned_put_leaves_no_shard_and_no_temp() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalDir::open(tmp.path()).unwrap();
    let a = id(6, 1, 0);
    let body = futures::stream::iter(vec![Ok(Bytes::from(vec![1u8; 100_000]))])
        .chain(futures::stream::pending())
        .boxed();
    let put = tokio::time::timeout(Duration::from_millis(300), store.put(a, body)).await;
    assert!(put.is_err(), "put should still be waiting for its body");
    assert!(store.stat(a).await.unwrap().is_none());
    assert!(dir_entries(store.tmp_dir()).is_empty());
}

/// A child process killed in the middle of a put (no destructors run): after
/// reopening, no shard is visible and the temp file is gone.
#[test]
fn crash_mid_put_leaves_no_shard() {
    const CHILD: &str = "TESSERA_CRASH_CHILD_DIR";
    if let Ok(dir) = std::env::var(CHILD) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = LocalDir::open(&dir).unwrap();
            let marker = Path::new(&dir).join("ready");
            let body = futures::stream::iter((0..10).map(|_| Ok(Bytes::from(vec![7u8; 65_536]))))
                .chain(futures::stream::once(async move {
                    std::fs::write(marker, b"").unwrap();
                    futures::future::pending::<Result<Bytes, StorageError>>().await
                }))
                .boxed();
            let _ = store.put(id(9, 1, 0), body).await;
        });
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_mid_put_leaves_no_shard", "--nocapture"])
        .env(CHILD, tmp.path())
        .spawn()
        .unwrap();
    let marker = tmp.path().join("ready");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "child never got mid-put"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let temps = dir_entries(&tmp.path().join("tmp"));
    assert_eq!(temps.len(), 1, "the write in progress has a temp file");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        dir_entries(&tmp.path().join("tmp")),
        temps,
        "kill -9 ran no cleanup"
    );

    let store = LocalDir::open(tmp.path()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        assert!(store.stat(id(9, 1, 0)).await.unwrap().is_none());
        assert!(store.list(None, 10).await.unwrap().is_empty());
    });
    assert!(
        dir_entries(store.tmp_dir()).is_empty(),
        "open removed the stale temp file"
    );
}

/// A full disk: the put fails with an I/O error and leaves nothing behind.
/// Uses a 1 MiB tmpfs (needs root); skipped with a note otherwise.
#[tokio::test]
async fn disk_full_is_an_error_not_a_half_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(tmp.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipping disk_full test: cannot mount a tmpfs here (not root?)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(tmp.path());
    let store = LocalDir::open(tmp.path()).unwrap();
    let free_before = store.health().await.unwrap().free;
    let a = id(1, 1, 0);
    let err = store
        .put(a, stream_of(vec![1u8; 2 << 20], 64 * 1024))
        .await
        .unwrap_err();
    match &err {
        StorageError::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(28), "{err}"),
        other => panic!("expected ENOSPC, got {other}"),
    }
    assert!(store.stat(a).await.unwrap().is_none());
    assert!(dir_entries(store.tmp_dir()).is_empty());
    assert!(store.health().await.unwrap().free >= free_before - 64 * 1024);
    // The space came back: a small shard still fits.
    store
        .put(a, stream_of(vec![2u8; 100_000], 10_000))
        .await
        .unwrap();
    assert_eq!(store.stat(a).await.unwrap().unwrap().size, 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_on_local_disks_survive_on_disk_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<LocalDir> = (0..6)
        .map(|i| LocalDir::open(tmp.path().join(format!("d{i}"))).unwrap())
        .collect();
    let stores: Vec<Arc<dyn ShardStore>> = dirs.iter().map(|d| Arc::new(d.clone()) as _).collect();
    let g = Geometry::new(4, 2, 4096).unwrap();
    let bytes = data(100_000, 2);
    let key = DataKey::generate();
    let object = ObjectId::random();
    let opts = WriteOptions {
        geometry: g,
        ..WriteOptions::default()
    };
    write_object(
        &stores,
        object,
        1,
        &key,
        &opts,
        common::body(&bytes, 10_000),
    )
    .await
    .unwrap();
    // Flip a byte in shard 2's file on disk.
    let path = dirs[2].shard_path(ShardId {
        object,
        part: 1,
        index: 2,
    });
    let mut file = std::fs::read(&path).unwrap();
    file[5000] ^= 0xff;
    std::fs::write(&path, file).unwrap();
    let loc = ObjectLocation {
        object,
        part: 1,
        size: 100_000,
        geometry: g,
        stores: stores.into_iter().map(Some).collect(),
    };
    let out = collect(read_object(loc, key, 0..100_000, ReadOptions::default()))
        .await
        .unwrap();
    assert_eq!(out, bytes);
}

/// A store keeps its minted id across reopening; a store written before
/// ids (shards, no identity file) keeps its shards, gets an id and its
/// legacy id until marked renamed; a corrupt identity file refuses to open.
#[tokio::test]
async fn identity_is_minted_once_and_legacy_stores_migrate() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("fresh");
    let store = LocalDir::open_migrating(&fresh, "disk-1").unwrap();
    let fresh_id = store.id().to_owned();
    assert_eq!(
        store.identity().legacy,
        None,
        "a new store has nothing to rename"
    );
    drop(store);
    assert_eq!(LocalDir::open(&fresh).unwrap().id(), fresh_id);

    // A store as a release before ids left it: shards and nothing else.
    let old = tmp.path().join("old");
    let shard = id(9, 1, 0);
    let store = LocalDir::open(&old).unwrap();
    store
        .put(shard, stream_of(vec![5; 1000], 100))
        .await
        .unwrap();
    drop(store);
    std::fs::remove_file(StoreIdentity::path(&old)).unwrap();

    let store = LocalDir::open_migrating(&old, "disk-4").unwrap();
    let migrated = store.id().to_owned();
    assert!(StoreIdentity::is_minted_id(&migrated));
    assert_ne!(migrated, fresh_id);
    assert_eq!(store.identity().unrenamed_legacy_id(), Some("disk-4"));
    assert!(store.stat(shard).await.unwrap().is_some());
    drop(store);
    // Reopened before the rename: same id, still pending.
    let store = LocalDir::open_migrating(&old, "disk-4").unwrap();
    assert_eq!(store.id(), migrated);
    assert_eq!(store.identity().unrenamed_legacy_id(), Some("disk-4"));
    store.mark_legacy_renamed().unwrap();
    store.mark_legacy_renamed().unwrap();
    drop(store);
    let store = LocalDir::open_migrating(&old, "disk-4").unwrap();
    assert_eq!(store.id(), migrated);
    let identity = store.identity();
    assert_eq!(identity.unrenamed_legacy_id(), None);
    assert_eq!(identity.legacy.map(|l| l.id).as_deref(), Some("disk-4"));
    drop(store);

    std::fs::write(StoreIdentity::path(&old), "id = \"disk-4\"\n").unwrap();
    let err = LocalDir::open_migrating(&old, "disk-4").unwrap_err();
    assert!(matches!(err, StorageError::Identity { .. }), "{err}");
}
