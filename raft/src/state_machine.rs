//! The replicated state machine: the metadata tables in their own redb file,
//! plus the raft pointers (last applied log id, last membership) kept in the
//! same transactions, so the file is always a consistent image of "the log
//! applied up to `last_applied`".
//!
//! Every batch of committed entries openraft hands over is applied in ONE
//! redb write transaction. The log is the durable record (its entries are
//! fsync'd before they count as committed), so most batches commit with
//! `Durability::None`: visible to readers at once, written to disk at the
//! next durable commit, which happens at least every [`DURABLE_INTERVAL`]
//! (and when the file closes). After a crash the state file opens at its
//! last durable commit, whose `last_applied` travels in the same
//! transaction, and openraft applies the log entries after it again.
//! Building a snapshot makes the state durable first, so log purging (which
//! only follows snapshots) never removes an entry the state file still
//! needs. This saves one fsync and most page writes per batch: the largest
//! cost of a small PUT.
//!
//! Batches are applied on a thread of their own ([`ApplyThread`]), not in
//! tokio's shared blocking pool: when the data path fills that pool (slow
//! lookups, file IO, encoding), the metadata still applies what it commits,
//! so reads waiting for their index do not time out as "no quorum".
//!
//! Snapshots are files: a header (the snapshot meta) followed by the table
//! export of `snapshot_data`, written from one consistent read transaction
//! and streamed to disk (never held in memory whole).

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftLogId, RaftSnapshotBuilder};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};

use crate::error::MetaError;
use crate::snapshot_data::SnapshotRecord;
use crate::types::{
    Entry, LogId, Proposal, ProposalOutcome, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig, command_sequence, decode, encode, storage_error,
};

const RAFT_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_sm_state");
const LAST_APPLIED_KEY: &str = "last_applied";
const MEMBERSHIP_KEY: &str = "membership";

const SNAPSHOT_MAGIC: &[u8; 8] = b"TSNAPv1\n";
const CURRENT_SNAPSHOT: &str = "current.snap";
const INCOMING_PREFIX: &str = "incoming-";

/// Longest time applied entries stay only in the log and redb's cache.
pub const DURABLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The redb-backed state machine of one member.
pub struct StateMachineStore {
    db: Arc<Database>,
    snapshot_dir: PathBuf,
    applier: ApplyThread,
    /// When the state file was last committed durably.
    last_durable: std::time::Instant,
}

impl StateMachineStore {
    /// Opens (or creates) the state file at `path`, with a page cache of at
    /// most `cache_bytes`; snapshots live in `snapshot_dir`.
    pub fn open(
        path: &Path,
        snapshot_dir: &Path,
        cache_bytes: usize,
    ) -> Result<StateMachineStore, MetaError> {
        crate::types::create_private_dir(snapshot_dir)?;
        // Half-received snapshots of a previous run are useless.
        for entry in std::fs::read_dir(snapshot_dir)? {
            let entry = entry?;
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(INCOMING_PREFIX)
            {
                std::fs::remove_file(entry.path())?;
            }
        }
        let db = Arc::new(crate::types::open_database(path, cache_bytes)?);
        let txn = db.begin_write()?;
        txn.open_table(RAFT_STATE)?;
        crate::tables::create_all(&txn)?;
        crate::upgrade::upgrade(&txn)?;
        txn.commit()?;
        Ok(StateMachineStore {
            db,
            snapshot_dir: snapshot_dir.to_path_buf(),
            applier: ApplyThread::start()?,
            last_durable: std::time::Instant::now(),
        })
    }

    /// The state file, for read views.
    pub(crate) fn db(&self) -> Arc<Database> {
        self.db.clone()
    }

    fn current_snapshot_path(&self) -> PathBuf {
        self.snapshot_dir.join(CURRENT_SNAPSHOT)
    }
}

/// Reads the raft pointers stored with the state.
pub(crate) fn read_raft_state(
    txn: &ReadTransaction,
) -> Result<(Option<LogId>, StoredMembership), MetaError> {
    raft_state_in(&txn.open_table(RAFT_STATE)?)
}

fn raft_state_in(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<(Option<LogId>, StoredMembership), MetaError> {
    let last_applied = match table.get(LAST_APPLIED_KEY)? {
        Some(v) => decode(v.value())?,
        None => None,
    };
    let membership = match table.get(MEMBERSHIP_KEY)? {
        Some(v) => decode(v.value())?,
        None => StoredMembership::default(),
    };
    Ok((last_applied, membership))
}

fn write_raft_state(
    txn: &WriteTransaction,
    last_applied: &Option<LogId>,
    membership: &StoredMembership,
) -> Result<(), MetaError> {
    let mut table = txn.open_table(RAFT_STATE)?;
    table.insert(LAST_APPLIED_KEY, encode(last_applied)?.as_slice())?;
    table.insert(MEMBERSHIP_KEY, encode(membership)?.as_slice())?;
    Ok(())
}

/// Applies a batch of entries in one write transaction, fsync'd if `durable`.
fn apply_batch(
    db: &Database,
    entries: Vec<Entry>,
    durable: bool,
) -> Result<Vec<ProposalOutcome>, MetaError> {
    let mut txn = db.begin_write()?;
    if !durable {
        txn.set_durability(Durability::None)?;
    }
    let (mut last_applied, mut membership) = raft_state_in(&txn.open_table(RAFT_STATE)?)?;
    let mut outcomes = Vec::with_capacity(entries.len());
    let mut applier = crate::apply::Applier::open(&txn)?;
    for entry in entries {
        let log_id = *entry.get_log_id();
        let mut outcome = Vec::new();
        match &entry.payload {
            EntryPayload::Blank => {}
            EntryPayload::Normal(Proposal(cmds)) => {
                for (position, cmd) in cmds.iter().enumerate() {
                    outcome.push(applier.apply(command_sequence(log_id.index, position), cmd)?);
                }
            }
            EntryPayload::Membership(m) => {
                membership = StoredMembership::new(Some(log_id), m.clone());
            }
        }
        last_applied = Some(log_id);
        outcomes.push(ProposalOutcome(outcome));
    }
    drop(applier);
    write_raft_state(&txn, &last_applied, &membership)?;
    txn.commit()?;
    metrics::histogram!("tessera_raft_apply_batch").record(outcomes.len() as f64);
    Ok(outcomes)
}

/// Commits everything applied so far durably (an empty durable transaction
/// persists the non-durable ones before it).
fn make_durable(db: &Database) -> Result<(), MetaError> {
    db.begin_write()?.commit()?;
    Ok(())
}

/// A job for the [`ApplyThread`].
type ApplyJob = Box<dyn FnOnce() + Send>;

/// The thread that applies committed batches (see the module docs); it
/// ends when its store is dropped.
struct ApplyThread {
    jobs: std::sync::mpsc::Sender<ApplyJob>,
}

impl ApplyThread {
    fn start() -> Result<ApplyThread, MetaError> {
        let (jobs, queue) = std::sync::mpsc::channel::<ApplyJob>();
        std::thread::Builder::new()
            .name("raft-apply".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    job();
                }
            })?;
        Ok(ApplyThread { jobs })
    }

    /// Runs `f` on the thread and waits for its result.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: ApplyJob = Box::new(move || {
            let _ = done.send(f());
        });
        self.jobs.send(job).map_err(|_| MetaError::Shutdown)?;
        answer.await.map_err(|_| MetaError::Shutdown)?
    }
}

/// Runs blocking redb work off the async runtime.
async fn blocking<T: Send + 'static>(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    f: impl FnOnce() -> Result<T, MetaError> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(storage_error(subject, verb, e)),
        Err(e) => Err(storage_error(subject, verb, e)),
    }
}

/// Writes a snapshot file: magic, meta length, meta, table export.
fn write_snapshot_file(
    path: &Path,
    meta: &SnapshotMeta,
    txn: &ReadTransaction,
) -> Result<(), MetaError> {
    let file = crate::types::private_file()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let meta_bytes = encode(meta)?;
    out.write_all(SNAPSHOT_MAGIC)?;
    out.write_all(&(meta_bytes.len() as u64).to_le_bytes())?;
    out.write_all(&meta_bytes)?;
    for record in crate::snapshot_data::export(txn)? {
        record?.write_to(&mut out)?;
    }
    let file = out
        .into_inner()
        .map_err(|e| MetaError::Storage(e.to_string()))?;
    file.sync_all()?;
    Ok(())
}

/// Reads a snapshot file's header, leaving `r` at the start of the table export.
fn read_snapshot_header(r: &mut impl Read) -> Result<SnapshotMeta, MetaError> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != SNAPSHOT_MAGIC {
        return Err(MetaError::Encoding("not a tessera snapshot".into()));
    }
    let mut len = [0u8; 8];
    r.read_exact(&mut len)?;
    let len = usize::try_from(u64::from_le_bytes(len))
        .ok()
        .filter(|l| *l <= 1 << 24)
        .ok_or_else(|| MetaError::Encoding("snapshot header too large".into()))?;
    let mut meta = vec![0u8; len];
    r.read_exact(&mut meta)?;
    Ok(decode(&meta)?)
}

fn sync_dir(dir: &Path) -> Result<(), MetaError> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn open_snapshot(path: &Path) -> Result<Option<(SnapshotMeta, std::fs::File)>, MetaError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let meta = read_snapshot_header(&mut BufReader::new(&mut file))?;
    file.seek(SeekFrom::Start(0))?;
    Ok(Some((meta, file)))
}

/// Builds snapshots from a consistent read transaction.
pub struct SnapshotBuilder {
    db: Arc<Database>,
    snapshot_dir: PathBuf,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let db = self.db.clone();
        let dir = self.snapshot_dir.clone();
        let (meta, file) = blocking(ErrorSubject::Snapshot(None), ErrorVerb::Write, move || {
            let txn = db.begin_read()?;
            // Log entries up to this snapshot may be purged once it exists:
            // the state file must not need them after a crash.
            make_durable(&db)?;
            let (last_applied, last_membership) = read_raft_state(&txn)?;
            let snapshot_id = match &last_applied {
                Some(l) => format!(
                    "{}-{}-{}",
                    l.leader_id.term,
                    l.index,
                    uuid::Uuid::new_v4().simple()
                ),
                None => format!("0-0-{}", uuid::Uuid::new_v4().simple()),
            };
            let meta = SnapshotMeta {
                last_log_id: last_applied,
                last_membership,
                snapshot_id,
            };
            let tmp = dir.join(format!("{INCOMING_PREFIX}build-{}", meta.snapshot_id));
            write_snapshot_file(&tmp, &meta, &txn)?;
            let path = dir.join(CURRENT_SNAPSHOT);
            std::fs::rename(&tmp, &path)?;
            sync_dir(&dir)?;
            let file = std::fs::File::open(&path)?;
            Ok((meta, file))
        })
        .await?;
        tracing::info!(snapshot = %meta.snapshot_id, "built raft snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let db = self.db.clone();
        blocking(ErrorSubject::StateMachine, ErrorVerb::Read, move || {
            read_raft_state(&db.begin_read()?)
        })
        .await
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ProposalOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let db = self.db.clone();
        let durable = self.last_durable.elapsed() >= DURABLE_INTERVAL;
        let outcomes = self
            .applier
            .run(move || apply_batch(&db, entries, durable))
            .await
            .map_err(|e| storage_error(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
        if durable {
            self.last_durable = std::time::Instant::now();
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            snapshot_dir: self.snapshot_dir.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.snapshot_dir.join(format!(
            "{INCOMING_PREFIX}{}",
            uuid::Uuid::new_v4().simple()
        ));
        let file = tokio::fs::OpenOptions::from(crate::types::private_file())
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .await
            .map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, e))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let file = snapshot.into_std().await;
        let db = self.db.clone();
        let dir = self.snapshot_dir.clone();
        let meta = meta.clone();
        let signature = Some(meta.signature());
        blocking(
            ErrorSubject::Snapshot(signature),
            ErrorVerb::Write,
            move || install_from_file(&db, &dir, &meta, file),
        )
        .await?;
        tracing::info!("installed raft snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let path = self.current_snapshot_path();
        let found = blocking(ErrorSubject::Snapshot(None), ErrorVerb::Read, move || {
            open_snapshot(&path)
        })
        .await?;
        Ok(found.map(|(meta, file)| Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        }))
    }
}

/// Replaces the whole state with a received snapshot file and keeps the file
/// as the member's current snapshot.
fn install_from_file(
    db: &Database,
    dir: &Path,
    meta: &SnapshotMeta,
    mut file: std::fs::File,
) -> Result<(), MetaError> {
    file.sync_all()?;
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(1 << 20, &mut file);
    read_snapshot_header(&mut reader)?;
    let txn = db.begin_write()?;
    crate::snapshot_data::clear_all(&txn)?;
    let records = std::iter::from_fn(|| SnapshotRecord::read_from(&mut reader).transpose());
    let count = crate::snapshot_data::import(&txn, records)?;
    tracing::debug!(records = count, "imported snapshot records");
    crate::upgrade::upgrade(&txn)?;
    write_raft_state(&txn, &meta.last_log_id, &meta.last_membership)?;
    txn.commit()?;
    drop(reader);

    // Keep the received file as the current snapshot: it is normally one of
    // our incoming files (found by inode); otherwise copy it.
    use std::os::unix::fs::MetadataExt;
    let ino = file.metadata()?.ino();
    let mut incoming = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(INCOMING_PREFIX)
            && entry.metadata()?.ino() == ino
        {
            incoming = Some(entry.path());
        }
    }
    let incoming = match incoming {
        Some(path) => path,
        None => {
            let path = dir.join(format!("{INCOMING_PREFIX}copy-{}", meta.snapshot_id));
            let mut copy = crate::types::private_file()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            file.seek(SeekFrom::Start(0))?;
            std::io::copy(&mut file, &mut copy)?;
            copy.sync_all()?;
            path
        }
    };
    std::fs::rename(incoming, dir.join(CURRENT_SNAPSHOT))?;
    sync_dir(dir)?;
    Ok(())
}
