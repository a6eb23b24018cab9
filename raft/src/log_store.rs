//! The raft log in its own redb file: entries, vote and purge pointer.
//!
//! Durability: an append is acknowledged to openraft (its `LogFlushed`
//! callback) only after the redb transaction holding it committed with
//! `Durability::Immediate` (fsync). Appends never block the raft core: they
//! are handed to one writer thread that drains everything queued and commits
//! it in a single transaction — group commit, many entries per fsync. Until
//! that commit the entries are served to readers from memory, as openraft
//! requires. Vote, truncate and purge go through the same queue (so they stay
//! ordered with appends) and wait for their commit before returning.

// openraft's StorageError is large and not ours to shrink.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, RaftLogId, RaftLogReader};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::error::MetaError;
use crate::types::{
    Entry, LogId, NodeId, StorageError, TypeConfig, Vote, decode, encode, storage_error,
};

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log_entries");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_log_meta");
const VOTE_KEY: &str = "vote";
const PURGED_KEY: &str = "last_purged";

/// Most operations folded into one redb transaction.
const MAX_BATCH: usize = 4096;

/// The redb-backed raft log of one member. Cheap to clone: clones share the
/// file, the in-memory tail and the writer thread.
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

struct Shared {
    db: Arc<Database>,
    mem: Arc<Mutex<MemState>>,
    ops: mpsc::Sender<Op>,
}

/// What readers need beyond the file: entries appended but not yet committed
/// to redb, and the log pointers.
#[derive(Default)]
struct MemState {
    /// index → (append sequence number, entry), removed once durable.
    pending: BTreeMap<u64, (u64, Entry)>,
    next_seq: u64,
    last_purged: Option<LogId>,
    last_log: Option<LogId>,
}

enum Op {
    Append {
        seq: u64,
        rows: Vec<(u64, Vec<u8>)>,
        callback: LogFlushed<TypeConfig>,
    },
    SaveVote(Vec<u8>, oneshot::Sender<Result<(), String>>),
    Truncate(u64, oneshot::Sender<Result<(), String>>),
    Purge(LogId, oneshot::Sender<Result<(), String>>),
}

/// Page cache of the log file. Entries are written once and read back only
/// while they are applied or sent to a lagging member, so a small cache does.
const LOG_CACHE_BYTES: usize = 4 << 20;

impl LogStore {
    /// Opens (or creates) the log in `path`.
    pub fn open(path: &Path) -> Result<LogStore, MetaError> {
        let db = Arc::new(crate::types::open_database(path, LOG_CACHE_BYTES)?);
        let txn = db.begin_write()?;
        txn.open_table(ENTRIES)?;
        txn.open_table(META)?;
        txn.commit()?;

        let read = db.begin_read()?;
        let meta = read.open_table(META)?;
        let last_purged: Option<LogId> = match meta.get(PURGED_KEY)? {
            Some(v) => Some(decode(v.value())?),
            None => None,
        };
        let entries = read.open_table(ENTRIES)?;
        let last_entry: Option<LogId> = match entries.last()? {
            Some((_, v)) => Some(*decode::<Entry>(v.value())?.get_log_id()),
            None => None,
        };
        let mem = Arc::new(Mutex::new(MemState {
            last_log: last_entry.or(last_purged),
            last_purged,
            ..MemState::default()
        }));

        let (tx, rx) = mpsc::channel();
        let writer_db = db.clone();
        let writer_mem = mem.clone();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer_loop(&writer_db, &writer_mem, &rx))?;
        Ok(LogStore {
            shared: Arc::new(Shared { db, mem, ops: tx }),
        })
    }

    /// A view of the last log id that does not keep the file open.
    pub(crate) fn tail(&self) -> LogTail {
        LogTail(self.shared.mem.clone())
    }

    /// Appends `entry` and saves `vote` durably, outside of raft: the
    /// forced failover's membership rewrite on a stopped member.
    pub(crate) fn force_append(&self, entry: Entry, vote: &Vote) -> Result<(), MetaError> {
        let index = entry.get_log_id().index;
        let txn = self.shared.db.begin_write()?;
        {
            let mut entries = txn.open_table(ENTRIES)?;
            entries.insert(index, encode(&entry)?.as_slice())?;
            let mut meta = txn.open_table(META)?;
            meta.insert(VOTE_KEY, encode(vote)?.as_slice())?;
        }
        txn.commit()?;
        self.mem().last_log = Some(*entry.get_log_id());
        Ok(())
    }

    /// The saved vote, read directly.
    pub(crate) fn vote(&self) -> Result<Option<Vote>, MetaError> {
        let txn = self.shared.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(match meta.get(VOTE_KEY)? {
            Some(v) => Some(decode(v.value())?),
            None => None,
        })
    }

    /// A weak handle on the file, to wait until every user closed it.
    pub(crate) fn db_weak(&self) -> std::sync::Weak<Database> {
        Arc::downgrade(&self.shared.db)
    }

    fn mem(&self) -> MutexGuard<'_, MemState> {
        lock(&self.shared.mem)
    }

    fn send(&self, op: Op) -> Result<(), StorageError> {
        self.shared
            .ops
            .send(op)
            .map_err(|_| storage_error(ErrorSubject::Logs, ErrorVerb::Write, "log writer stopped"))
    }

    /// Queues `make(done)` and waits until the writer committed it.
    async fn write_sync(
        &self,
        subject: ErrorSubject<NodeId>,
        make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Op,
    ) -> Result<(), StorageError> {
        let (done, wait) = oneshot::channel();
        self.send(make(done))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(storage_error(subject, ErrorVerb::Write, e)),
            Err(_) => Err(storage_error(
                subject,
                ErrorVerb::Write,
                "log writer stopped",
            )),
        }
    }

    fn read_entries(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<Entry>, StorageError> {
        let read_err =
            |e: &dyn std::fmt::Display| storage_error(ErrorSubject::Logs, ErrorVerb::Read, e);
        // Snapshot the in-memory tail before opening the read transaction:
        // an entry that left `pending` was committed before, so the
        // transaction sees it.
        let pending: BTreeMap<u64, Entry> = self
            .mem()
            .pending
            .range(range)
            .map(|(i, (_, e))| (*i, e.clone()))
            .collect();
        let txn = self.shared.db.begin_read().map_err(|e| read_err(&e))?;
        let table = txn.open_table(ENTRIES).map_err(|e| read_err(&e))?;
        let mut out = BTreeMap::new();
        for row in table.range::<u64>(range).map_err(|e| read_err(&e))? {
            let (k, v) = row.map_err(|e| read_err(&e))?;
            let entry: Entry = decode(v.value()).map_err(|e| read_err(&e))?;
            out.insert(k.value(), entry);
        }
        out.extend(pending);
        Ok(out.into_values().collect())
    }
}

/// The last log id of a member's log (appended, maybe not yet flushed).
#[derive(Clone)]
pub(crate) struct LogTail(Arc<Mutex<MemState>>);

impl LogTail {
    /// The last log id.
    pub(crate) fn last_log_id(&self) -> Option<LogId> {
        lock(&self.0).last_log
    }
}

fn lock(m: &Mutex<MemState>) -> MutexGuard<'_, MemState> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The writer thread: drain the queue, commit it in one transaction, answer.
fn writer_loop(db: &Database, mem: &Mutex<MemState>, rx: &mpsc::Receiver<Op>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let result = commit_batch(db, &batch).map_err(|e| e.to_string());
        metrics::histogram!("tessera_raft_log_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        if result.is_ok() {
            let mut mem = lock(mem);
            for op in &batch {
                if let Op::Append { seq, rows, .. } = op {
                    for (index, _) in rows {
                        if mem.pending.get(index).is_some_and(|(s, _)| s == seq) {
                            mem.pending.remove(index);
                        }
                    }
                }
            }
        }
        metrics::histogram!("tessera_raft_log_batch_ops").record(batch.len() as f64);
        for op in batch {
            let res = result.clone();
            match op {
                Op::Append { callback, .. } => {
                    callback.log_io_completed(res.map_err(std::io::Error::other))
                }
                Op::SaveVote(_, done) | Op::Truncate(_, done) | Op::Purge(_, done) => {
                    let _ = done.send(res);
                }
            }
        }
    }
}

fn commit_batch(db: &Database, batch: &[Op]) -> Result<(), MetaError> {
    let txn = db.begin_write()?;
    {
        let mut entries = txn.open_table(ENTRIES)?;
        let mut meta = txn.open_table(META)?;
        for op in batch {
            match op {
                Op::Append { rows, .. } => {
                    for (index, bytes) in rows {
                        entries.insert(*index, bytes.as_slice())?;
                    }
                }
                Op::SaveVote(bytes, _) => {
                    meta.insert(VOTE_KEY, bytes.as_slice())?;
                }
                Op::Truncate(since, _) => {
                    entries.retain_in(*since.., |_, _| false)?;
                }
                Op::Purge(upto, _) => {
                    entries.retain_in(..=upto.index, |_, _| false)?;
                    meta.insert(PURGED_KEY, encode(upto)?.as_slice())?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        self.read_entries(bounds)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let mem = self.mem();
        Ok(LogState {
            last_purged_log_id: mem.last_purged,
            last_log_id: mem.last_log,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let bytes =
            encode(vote).map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        self.write_sync(ErrorSubject::Vote, |done| Op::SaveVote(bytes, done))
            .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.vote()
            .map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Read, e))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut rows = Vec::new();
        let mut mem = self.mem();
        let seq = mem.next_seq;
        mem.next_seq += 1;
        for entry in entries {
            let log_id = *entry.get_log_id();
            let bytes = encode(&entry)
                .map_err(|e| storage_error(ErrorSubject::Log(log_id), ErrorVerb::Write, e))?;
            rows.push((log_id.index, bytes));
            mem.pending.insert(log_id.index, (seq, entry));
            mem.last_log = Some(log_id);
        }
        drop(mem);
        self.send(Op::Append {
            seq,
            rows,
            callback,
        })
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let since = log_id.index;
        {
            let mut mem = self.mem();
            mem.pending.retain(|i, _| *i < since);
        }
        self.write_sync(ErrorSubject::Logs, |done| Op::Truncate(since, done))
            .await?;
        // The new last entry is the one just before `since`, if still there.
        let before = if since == 0 {
            Vec::new()
        } else {
            self.read_entries((Bound::Included(since - 1), Bound::Excluded(since)))?
        };
        let mut mem = self.mem();
        mem.last_log = before.first().map(|e| *e.get_log_id()).or(mem.last_purged);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.write_sync(ErrorSubject::Logs, |done| Op::Purge(log_id, done))
            .await?;
        let mut mem = self.mem();
        mem.pending.retain(|i, _| *i > log_id.index);
        mem.last_purged = Some(log_id);
        if mem.last_log.is_none_or(|l| l.index < log_id.index) {
            mem.last_log = Some(log_id);
        }
        Ok(())
    }
}
