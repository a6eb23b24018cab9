//! Listing benchmark: loads 1,000,000 object versions into one bucket (1,000
//! "directories" of 1,000 keys), then lists them and reports keys per second:
//! without a delimiter, with a delimiter (every directory listed under its
//! prefix), and the top level with a delimiter (1,000 common prefixes, each
//! found by seeking past the one before).
//!
//! `cargo run --release -p tessera-raft --example listing_bench [-- KEYS]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::error::Error;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase};
use tessera_raft::apply::Applier;
use tessera_raft::command::Command;
use tessera_raft::model::{
    Bucket, ObjectData, ObjectVersion, PartData, Segment, SystemMetadata, Versioning,
};
use tessera_raft::{ListObjectsQuery, ReadView, tables};

const PER_DIR: usize = 1000;
const BATCH: usize = 10_000;
const PAGE: usize = 1000;

fn key(i: usize) -> String {
    format!("dir{:04}/object-{:07}.bin", i / PER_DIR, i)
}

fn version(i: usize) -> ObjectVersion {
    let mut object_id = [0u8; 16];
    object_id[..8].copy_from_slice(&(i as u64).to_be_bytes());
    ObjectVersion {
        bucket: "bench".into(),
        key: key(i),
        version_id: format!("{i:016x}"),
        last_modified: 1_700_000_000_000,
        size: 1 << 20,
        etag: format!("{i:032x}"),
        checksums: Vec::new(),
        system: SystemMetadata {
            content_type: Some("application/octet-stream".into()),
            ..SystemMetadata::default()
        },
        user: BTreeMap::new(),
        tags: Vec::new(),
        owner: "TKbench".into(),
        wrapped_key: vec![7; 60],
        data: ObjectData::Parts(vec![PartData {
            number: 1,
            size: 1 << 20,
            etag: format!("{i:032x}"),
            checksums: Vec::new(),
            segment: Segment {
                object_id,
                part: 1,
                size: 1 << 20,
                data_shards: 4,
                parity_shards: 2,
                block_size: 1 << 20,
                placement: (0..6).map(|d| format!("disk-{d}")).collect(),
                missing: Vec::new(),
            },
            uploaded: 1_700_000_000_000,
        }]),
    }
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (Linux);
/// on a shared machine it measures the work, where wall time measures the queue.
fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Time `f`: (wall seconds, cpu seconds).
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (wall, cpu) = (Instant::now(), cpu_time());
    let out = f();
    (
        out,
        wall.elapsed().as_secs_f64(),
        (cpu_time() - cpu).as_secs_f64(),
    )
}

/// Print one result line.
fn report(what: &str, count: usize, unit: &str, wall: f64, cpu: f64) {
    println!(
        "{what:<26} {count} {unit} in {wall:.3} s wall = {:.0} {unit}/s; {cpu:.3} s cpu = {:.0} {unit}/cpu-s",
        count as f64 / wall,
        count as f64 / cpu
    );
}

/// List everything matching the query, page by page; returns (keys, common prefixes).
fn list_all(view: &ReadView, prefix: &str, delimiter: Option<&str>) -> (usize, usize) {
    let mut q = ListObjectsQuery {
        prefix: prefix.into(),
        delimiter: delimiter.map(Into::into),
        start_after: None,
        max_keys: PAGE,
    };
    let (mut keys, mut prefixes) = (0, 0);
    loop {
        let page = view.list_objects("bench", &q).unwrap();
        keys += page.objects.len();
        prefixes += page.common_prefixes.len();
        if !page.is_truncated {
            return (keys, prefixes);
        }
        q.start_after = page.next_marker;
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let db = Database::create(dir.path().join("meta.redb"))?;

    let (started, started_cpu) = (Instant::now(), cpu_time());
    let mut index = 0u64;
    let txn = db.begin_write()?;
    tables::create_all(&txn)?;
    let bucket = Bucket {
        name: "bench".into(),
        owner: "TKbench".into(),
        created: 0,
        versioning: Versioning::Enabled,
        tags: None,
        cors: None,
        settings: BTreeMap::new(),
    };
    Applier::open(&txn)?.apply(index, &Command::CreateBucket { bucket })??;
    txn.commit()?;
    for start in (0..n).step_by(BATCH) {
        let txn = db.begin_write()?;
        {
            let mut applier = Applier::open(&txn)?;
            for i in start..(start + BATCH).min(n) {
                index += 1;
                let cmd = Command::PutObject {
                    version: version(i),
                    precondition: None,
                };
                applier.apply(index, &cmd)??;
            }
        }
        txn.commit()?;
    }
    let load = started.elapsed().as_secs_f64();
    let load_cpu = (cpu_time() - started_cpu).as_secs_f64();
    report("load (puts applied):", n, "puts", load, load_cpu);
    println!("  ({BATCH} puts per transaction, fsync on each commit)");

    let view = ReadView::new(db.begin_read()?);
    // Warm the page cache once so every run measures the same thing.
    list_all(&view, "", None);

    let ((keys, _), wall, cpu) = timed(|| list_all(&view, "", None));
    report("no delimiter:", keys, "keys", wall, cpu);

    let (keys, wall, cpu) = timed(|| {
        (0..n.div_ceil(PER_DIR))
            .map(|d| list_all(&view, &format!("dir{d:04}/"), Some("/")).0)
            .sum::<usize>()
    });
    report("delimiter, per directory:", keys, "keys", wall, cpu);

    let ((_, prefixes), wall, cpu) = timed(|| list_all(&view, "", Some("/")));
    report("delimiter, top level:", n, "keys", wall, cpu);
    println!("  ({prefixes} common prefixes, one seek each)");
    Ok(())
}
