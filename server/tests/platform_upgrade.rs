//! Data directories written by earlier releases open and serve with this
//! one. Each fixture under `tests/fixtures/` is such a directory, made by
//! a released binary with `make-legacy-datadir.sh` (which documents what it
//! holds), packed with a manifest of every version in it.
//!
//! `legacy-51be8f6` is from the release before store ids were minted: its
//! stores have no `store.id` and its metadata places shards on `disk-N`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tessera_server::testing::TestServer;
use tessera_storage::store::StoreIdentity;

/// The fixture of the release before store ids.
const BEFORE_STORE_IDS: &str = "legacy-51be8f6";

/// One line of a fixture's manifest.
#[derive(Debug, Clone)]
struct Entry {
    /// `object`, `marker` or `part` (of an upload in progress).
    kind: String,
    bucket: String,
    key: String,
    /// Version id; for a part, `UPLOAD-ID:PART-NUMBER`.
    version: String,
    sha256: String,
    size: u64,
}

fn fixture_path(name: &str, ext: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.{ext}"))
}

fn manifest(name: &str) -> Vec<Entry> {
    let text = std::fs::read_to_string(fixture_path(name, "manifest")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 6, "{l}");
            Entry {
                kind: f[0].into(),
                bucket: f[1].into(),
                key: f[2].into(),
                version: f[3].into(),
                sha256: f[4].into(),
                size: f[5].parse().unwrap(),
            }
        })
        .collect()
}

/// The fixture's data directory, unpacked (with the `tar` command) into a
/// fresh temporary directory.
fn unpack(name: &str) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("tessera-fixture-")
        .tempdir()
        .unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(fixture_path(name, "tar.gz"))
        .arg("-C")
        .arg(dir.path())
        .arg("--strip-components=1")
        .status()
        .unwrap();
    assert!(status.success(), "tar failed: {status}");
    dir
}

/// A server on the unpacked fixture. The orphan sweep is kept away (the
/// fixture's files are older than its grace): shards that go must go by GC.
async fn start_on(dir: TempDir) -> TestServer {
    TestServer::start_in(dir, |c| {
        c.orphan_grace = Duration::from_secs(10 * 365 * 86_400)
    })
    .await
    .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every store id the metadata names: placements of the referenced
/// segments (versions, uploaded parts) and of queued deletions.
async fn named_stores(server: &TestServer) -> BTreeSet<String> {
    server
        .server()
        .meta()
        .read(|view| {
            let mut names = BTreeSet::new();
            for (_, record) in view.segments_after(None, usize::MAX)? {
                names.extend(record.segment.placement);
            }
            for (_, segments) in view.deletions(usize::MAX)? {
                names.extend(segments.into_iter().flat_map(|s| s.placement));
            }
            Ok(names)
        })
        .await
        .unwrap()
}

/// Hex object ids of the segments the metadata references.
async fn referenced_objects(server: &TestServer) -> BTreeSet<String> {
    server
        .server()
        .meta()
        .read(|view| {
            Ok(view
                .segments_after(None, usize::MAX)?
                .into_iter()
                .map(|(_, r)| hex::encode(r.segment.object_id))
                .collect())
        })
        .await
        .unwrap()
}

/// Shard files on the disks whose object no segment references.
async fn unreferenced_shards(server: &TestServer) -> Vec<std::path::PathBuf> {
    let referenced = referenced_objects(server).await;
    common::shard_files(server.data_dir())
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !referenced.contains(&name[..32])
        })
        .collect()
}

/// Every store has a minted id, unique, kept with its legacy id marked
/// renamed; the admin status shows exactly these ids; the metadata names
/// no other store. Returns the ids in disk order.
async fn assert_migrated(server: &TestServer) -> Vec<String> {
    let identities: Vec<StoreIdentity> = (1..=6)
        .map(|n| common::store_identity(server.data_dir(), n))
        .collect();
    for (n, identity) in (1..).zip(&identities) {
        assert!(StoreIdentity::is_minted_id(&identity.id), "{identity:?}");
        let legacy = identity.legacy.as_ref().expect("a legacy id");
        assert_eq!(legacy.id, format!("disk-{n}"));
        assert!(legacy.renamed, "{identity:?}");
    }
    let ids: Vec<String> = identities.into_iter().map(|i| i.id).collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), 6, "{ids:?}");
    let status = server.server().admin_client().status().await.unwrap();
    let shown: BTreeSet<String> = status.stores.iter().map(|s| s.id.clone()).collect();
    assert_eq!(shown, unique);
    let named = named_stores(server).await;
    assert!(!named.is_empty());
    assert!(named.is_subset(&unique), "{named:?} vs {unique:?}");
    ids
}

/// Every object version of the manifest reads back whole and equal; the
/// versions listing of the versioned bucket is the manifest's.
async fn assert_serves(server: &TestServer, entries: &[Entry]) {
    let client = common::s3_client(server);
    for e in entries.iter().filter(|e| e.kind == "object") {
        let mut get = client.get_object().bucket(&e.bucket).key(&e.key);
        if e.version != "null" {
            get = get.version_id(&e.version);
        }
        let out = get
            .send()
            .await
            .unwrap_or_else(|err| panic!("{e:?}: {err:?}"));
        let bytes = out.body.collect().await.unwrap().into_bytes();
        assert_eq!(bytes.len() as u64, e.size, "{e:?}");
        assert_eq!(sha256_hex(&bytes), e.sha256, "{e:?}");
    }
    // A ranged read across the stripe boundary of the two-stripe object
    // (stripes of 4 MiB) returns those bytes of the whole.
    let whole = common::get_bytes(&client, "legacy", "big.bin").await;
    let out = client
        .get_object()
        .bucket("legacy")
        .key("big.bin")
        .range("bytes=4194000-4194999")
        .send()
        .await
        .unwrap();
    let range = out.body.collect().await.unwrap().into_bytes();
    assert_eq!(range[..], whole[4_194_000..4_195_000]);

    let meta = client
        .head_object()
        .bucket("legacy")
        .key("meta.json")
        .send()
        .await
        .unwrap();
    assert_eq!(meta.content_type(), Some("application/json"));
    assert_eq!(meta.cache_control(), Some("max-age=60"));
    let user: BTreeMap<String, String> = meta
        .metadata()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    assert_eq!(
        user,
        BTreeMap::from([
            ("color".to_owned(), "blue".to_owned()),
            ("fixture".to_owned(), "legacy".to_owned())
        ])
    );
    let multipart = client
        .head_object()
        .bucket("legacy")
        .key("multipart.bin")
        .send()
        .await
        .unwrap();
    assert!(
        multipart.e_tag().unwrap().ends_with("-1\""),
        "{multipart:?}"
    );

    let listed = client
        .list_object_versions()
        .bucket("history")
        .send()
        .await
        .unwrap();
    let versions: BTreeSet<(String, String)> = listed
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap().to_owned(),
                v.version_id().unwrap().to_owned(),
            )
        })
        .collect();
    let markers: BTreeSet<(String, String)> = listed
        .delete_markers()
        .iter()
        .map(|m| {
            (
                m.key().unwrap().to_owned(),
                m.version_id().unwrap().to_owned(),
            )
        })
        .collect();
    let want = |kind: &str| -> BTreeSet<(String, String)> {
        entries
            .iter()
            .filter(|e| e.kind == kind && e.bucket == "history")
            .map(|e| (e.key.clone(), e.version.clone()))
            .collect()
    };
    assert_eq!(versions, want("object"));
    assert_eq!(markers, want("marker"));
    assert!(listed.delete_markers()[0].is_latest().unwrap());
    assert_eq!(
        common::get_code(&client, "history", "doc.txt").await,
        "NoSuchKey"
    );

    let keys: BTreeSet<String> = client
        .list_objects_v2()
        .bucket("legacy")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = entries
        .iter()
        .filter(|e| e.kind == "object" && e.bucket == "legacy")
        .map(|e| e.key.clone())
        .collect();
    assert!(want.is_subset(&keys), "{want:?} not in {keys:?}");
}

/// The upload the fixture left in progress: its id and its parts' entries.
fn pending_upload(entries: &[Entry]) -> (String, Vec<Entry>) {
    let parts: Vec<Entry> = entries
        .iter()
        .filter(|e| e.kind == "part")
        .cloned()
        .collect();
    let upload_id = parts[0].version.split(':').next().unwrap().to_owned();
    (upload_id, parts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_before_store_ids_migrates_and_serves_every_object() {
    let entries = manifest(BEFORE_STORE_IDS);
    let dir = unpack(BEFORE_STORE_IDS);
    let fixture_shards = common::shard_files(dir.path());
    assert!(!fixture_shards.is_empty());
    for n in 1..=6 {
        let root = dir.path().join(format!("disks/disk-{n}"));
        assert_eq!(
            StoreIdentity::read(&root).unwrap(),
            None,
            "as the release left it"
        );
    }

    let mut server = start_on(dir).await;
    let ids = assert_migrated(&server).await;
    assert_serves(&server, &entries).await;

    // The deletion queued by the old release (the overwritten version)
    // named stores by legacy id: GC finds them under their new ids and
    // removes exactly that version's six shards.
    let cleaned = common::eventually(10, || async {
        unreferenced_shards(&server).await.is_empty()
    })
    .await;
    assert!(cleaned, "left: {:?}", unreferenced_shards(&server).await);
    let now = common::shard_files(server.data_dir());
    assert_eq!(fixture_shards.len() - now.len(), 6);

    // The upload in progress lists its parts and completes from them.
    let client = common::s3_client(&server);
    let (upload_id, parts) = pending_upload(&entries);
    let uploads = client
        .list_multipart_uploads()
        .bucket("legacy")
        .send()
        .await
        .unwrap();
    let ids_listed: Vec<&str> = uploads
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id())
        .collect();
    assert_eq!(ids_listed, [upload_id.as_str()]);
    let listed = client
        .list_parts()
        .bucket("legacy")
        .key("in-progress.bin")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
    let sizes: Vec<i64> = listed.parts().iter().map(|p| p.size().unwrap()).collect();
    assert_eq!(
        sizes,
        parts.iter().map(|p| p.size as i64).collect::<Vec<_>>()
    );
    let completed: Vec<CompletedPart> = listed
        .parts()
        .iter()
        .map(|p| {
            CompletedPart::builder()
                .part_number(p.part_number().unwrap())
                .e_tag(p.e_tag().unwrap())
                .build()
        })
        .collect();
    // Every part but the last is below S3's 5 MiB: complete from the last.
    client
        .complete_multipart_upload()
        .bucket("legacy")
        .key("in-progress.bin")
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed[1..].to_vec()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let bytes = common::get_bytes(&client, "legacy", "in-progress.bin").await;
    assert_eq!(sha256_hex(&bytes), parts[1].sha256);

    // New writes go to the stores under their new ids.
    let body = vec![0x5au8; 300_000];
    client
        .put_object()
        .bucket("legacy")
        .key("after-upgrade.bin")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        common::get_bytes(&client, "legacy", "after-upgrade.bin").await,
        body
    );
    assert!(
        named_stores(&server)
            .await
            .is_subset(&ids.iter().cloned().collect())
    );

    // A second start keeps the ids and changes nothing.
    server.restart().await.unwrap();
    assert_eq!(assert_migrated(&server).await, ids);
    let client = common::s3_client(&server);
    assert_eq!(
        common::get_bytes(&client, "legacy", "after-upgrade.bin").await,
        body
    );
    assert_serves(&server, &entries).await;
    server.shutdown().await.unwrap();
}

/// Rewrites the identity file of `disks/disk-N` with its legacy id not
/// (yet) renamed, as a crash before the end of the migration leaves it.
fn unmark(data_dir: &Path, n: usize, id: Option<&str>) {
    let root = data_dir.join(format!("disks/disk-{n}"));
    let mut identity = StoreIdentity::mint(Some(&format!("disk-{n}")));
    if let Some(id) = id {
        identity.id = id.to_owned();
    }
    identity.write(&root).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_migration_finishes_at_the_next_start() {
    let entries = manifest(BEFORE_STORE_IDS);
    let dir = unpack(BEFORE_STORE_IDS);
    // A crash while the ids were being minted, before the rename was
    // proposed: disks 1 and 2 have ids, the others none.
    unmark(dir.path(), 1, None);
    unmark(dir.path(), 2, None);
    let early: Vec<String> = (1..=2).map(|n| common::store_id(dir.path(), n)).collect();
    let mut server = start_on(dir).await;
    let ids = assert_migrated(&server).await;
    assert_eq!(ids[..2], early[..], "ids once written are kept");
    assert_serves(&server, &entries).await;

    // A crash after the rename committed, before the stores were marked:
    // the rename is proposed again and changes nothing.
    server
        .restart_after(|data| {
            for (n, id) in (1..=6).zip(&ids) {
                unmark(data, n, Some(id));
            }
        })
        .await
        .unwrap();
    assert_eq!(assert_migrated(&server).await, ids);
    assert_serves(&server, &entries).await;

    // A corrupt identity refuses to start rather than mint a new id.
    let path = server.data_dir().join("disks/disk-4/store.id");
    let err = server
        .restart_after(|_| std::fs::write(&path, "id = \"\n").unwrap())
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("store.id"), "{err:#}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "id = \"\n");
}
