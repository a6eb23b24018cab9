//! Shared helpers of the model tests: an in-memory redb database with the
//! model tables, commands applied one per transaction at increasing log
//! indexes, and builders for model values.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;

use redb::backends::InMemoryBackend;
use redb::{Database, ReadableDatabase};
use tessera_raft::ReadView;
use tessera_raft::apply::apply;
use tessera_raft::command::{ApplyError, Command, CommandResponse, Precondition};
use tessera_raft::model::{
    Bucket, MultipartUpload, ObjectData, ObjectVersion, PartData, Segment, SystemMetadata,
    Versioning,
};
use tessera_raft::tables;

/// A model database applying one command per transaction.
pub struct Meta {
    pub db: Database,
    pub index: u64,
}

impl Meta {
    pub fn new() -> Self {
        let db = Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .unwrap();
        let txn = db.begin_write().unwrap();
        tables::create_all(&txn).unwrap();
        txn.commit().unwrap();
        Meta { db, index: 0 }
    }

    /// A database holding one bucket `name` owned by `TKowner`.
    pub fn with_bucket(name: &str, versioning: Versioning) -> Self {
        let mut meta = Meta::new();
        meta.ok(Command::CreateBucket {
            bucket: bucket(name, versioning),
        });
        meta
    }

    /// Apply a command that must succeed without changing anything.
    pub fn ok_unchanged(&mut self, cmd: Command) {
        let before = self.dump();
        self.ok(cmd);
        assert_eq!(self.dump(), before);
    }

    /// Apply at the next log index and commit.
    pub fn apply(&mut self, cmd: Command) -> Result<CommandResponse, ApplyError> {
        self.index += 1;
        let txn = self.db.begin_write().unwrap();
        let out = apply(&txn, self.index, &cmd).unwrap();
        txn.commit().unwrap();
        out
    }

    /// Apply and expect success.
    pub fn ok(&mut self, cmd: Command) -> CommandResponse {
        self.apply(cmd).unwrap()
    }

    pub fn view(&self) -> ReadView {
        ReadView::new(self.db.begin_read().unwrap())
    }

    /// Every model table's contents, for "nothing changed" checks.
    pub fn dump(&self) -> Vec<tessera_raft::snapshot_data::SnapshotRecord> {
        let txn = self.db.begin_read().unwrap();
        tessera_raft::snapshot_data::export(&txn)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

pub fn bucket(name: &str, versioning: Versioning) -> Bucket {
    Bucket {
        name: name.into(),
        owner: "TKowner".into(),
        created: 1,
        versioning,
        tags: None,
        cors: None,
        settings: BTreeMap::new(),
    }
}

pub fn segment(seed: u64) -> Segment {
    let mut object_id = [0u8; 16];
    object_id[..8].copy_from_slice(&seed.to_be_bytes());
    Segment {
        object_id,
        part: 1,
        size: seed,
        data_shards: 4,
        parity_shards: 2,
        block_size: 1 << 20,
        placement: (0..6).map(|i| format!("disk-{i}")).collect(),
        missing: Vec::new(),
    }
}

/// Hex MD5-like etag derived from a seed (32 hex digits).
pub fn etag_of(seed: u64) -> String {
    format!("{seed:032x}")
}

pub fn part(number: u32, size: u64, seed: u64) -> PartData {
    PartData {
        number,
        size,
        etag: etag_of(seed),
        checksums: Vec::new(),
        segment: segment(seed),
        uploaded: 5,
    }
}

pub fn version(bucket: &str, key: &str, version_id: &str, seed: u64) -> ObjectVersion {
    ObjectVersion {
        bucket: bucket.into(),
        key: key.into(),
        version_id: version_id.into(),
        last_modified: seed as i64,
        size: seed,
        etag: etag_of(seed),
        checksums: Vec::new(),
        system: SystemMetadata::default(),
        user: BTreeMap::new(),
        tags: Vec::new(),
        owner: "TKowner".into(),
        wrapped_key: vec![1, 2, 3],
        data: ObjectData::Parts(vec![part(1, seed, seed)]),
    }
}

pub fn put(bucket: &str, key: &str, version_id: &str, seed: u64) -> Command {
    Command::PutObject {
        version: version(bucket, key, version_id, seed),
        precondition: None,
    }
}

pub fn put_if(
    bucket: &str,
    key: &str,
    version_id: &str,
    seed: u64,
    precondition: Precondition,
) -> Command {
    Command::PutObject {
        version: version(bucket, key, version_id, seed),
        precondition: Some(precondition),
    }
}

pub fn delete(bucket: &str, key: &str, version_id: Option<&str>, marker_id: &str) -> Command {
    Command::DeleteObject {
        bucket: bucket.into(),
        key: key.into(),
        version_id: version_id.map(Into::into),
        marker_version_id: marker_id.into(),
        now: 9,
        owner: "TKowner".into(),
        precondition: None,
    }
}

pub fn create_upload(bucket: &str, key: &str, upload_id: &str) -> Command {
    let mut template = version(bucket, key, "", 0);
    template.data = ObjectData::Inline(Vec::new());
    Command::CreateMultipartUpload {
        upload: MultipartUpload {
            bucket: bucket.into(),
            key: key.into(),
            upload_id: upload_id.into(),
            initiated: 3,
            template,
            checksum_algorithm: None,
            checksum_type: None,
        },
    }
}

pub fn put_part(bucket: &str, key: &str, upload_id: &str, part: PartData) -> Command {
    Command::PutPart {
        bucket: bucket.into(),
        key: key.into(),
        upload_id: upload_id.into(),
        part,
    }
}

pub fn complete(
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: Vec<(u32, String)>,
    version_id: &str,
    min_part_size: u64,
) -> Command {
    Command::CompleteMultipartUpload {
        bucket: bucket.into(),
        key: key.into(),
        upload_id: upload_id.into(),
        parts,
        version_id: version_id.into(),
        now: 11,
        min_part_size,
        precondition: None,
        checksum: None,
    }
}
