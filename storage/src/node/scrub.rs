//! What a node's scrub shares with the gateways ([`NodeScrub`]): the
//! shards it found bad, kept on disk until a gateway acknowledges them,
//! and a gateway's request to start a pass now.
//!
//! The findings file holds a line `next N` (the next sequence number),
//! then one line per finding: `seq store shard reason`. It is replaced
//! whole (written aside, fsynced, renamed) on every change; findings are
//! few, and each one must survive a crash until a gateway has queued its
//! shard for repair. At most [`MAX_FINDINGS`] wait at once: a failing disk
//! past them has its further bad shards found again by a later pass, once
//! the gateways have taken the first ones.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::protocol::ScrubFinding;
use crate::error::StorageError;
use crate::store::{ShardId, write_private_file};

/// Most findings waiting for a gateway at once.
pub const MAX_FINDINGS: usize = 4096;

/// The node's scrub findings and pass requests (see the module docs).
#[derive(Debug)]
pub struct NodeScrub {
    path: PathBuf,
    log: Mutex<Log>,
    requested: AtomicBool,
    wake: Arc<Notify>,
}

/// The findings not yet acknowledged.
#[derive(Debug, Default, PartialEq, Eq)]
struct Log {
    next: u64,
    findings: Vec<ScrubFinding>,
}

impl Log {
    fn encode(&self) -> String {
        let mut out = format!("next {}", self.next);
        for f in &self.findings {
            out.push_str(&format!(
                "\n{} {} {} {}",
                f.seq,
                f.store,
                f.shard,
                f.reason.replace('\n', " ")
            ));
        }
        out
    }

    /// Reads a findings file; lines it cannot read are left out (with a warning).
    fn decode(text: &str) -> Self {
        let mut log = Log::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(next) = line.strip_prefix("next ") {
                log.next = log.next.max(next.trim().parse().unwrap_or(0));
                continue;
            }
            let mut words = line.splitn(4, ' ');
            let finding = (|| {
                Some(ScrubFinding {
                    seq: words.next()?.parse().ok()?,
                    store: words.next()?.to_owned(),
                    shard: words.next()?.parse().ok()?,
                    reason: words.next().unwrap_or("").to_owned(),
                })
            })();
            match finding {
                Some(f) => {
                    log.next = log.next.max(f.seq.saturating_add(1));
                    log.findings.push(f);
                }
                None => tracing::warn!(line, "scrub findings: unreadable line left out"),
            }
        }
        log
    }
}

impl NodeScrub {
    /// The findings kept in `path` (none when it does not exist yet).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let path = path.into();
        let log = match std::fs::read_to_string(&path) {
            Ok(text) => Log::decode(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Log::default(),
            Err(e) => return Err(StorageError::io(format!("reading {}", path.display()), e)),
        };
        Ok(NodeScrub {
            path,
            log: Mutex::new(log),
            requested: AtomicBool::new(false),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Where the findings are kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, log: &Log) -> Result<(), StorageError> {
        write_private_file(&self.path, &log.encode())
            .map_err(|e| StorageError::io(format!("saving {}", self.path.display()), e))
    }

    /// Records that `shard` of `store` is bad, durably; false when it is
    /// already waiting to be acknowledged, or when [`MAX_FINDINGS`] are.
    pub fn record(&self, store: &str, shard: ShardId, reason: &str) -> Result<bool, StorageError> {
        let mut log = self.lock();
        if log.findings.len() >= MAX_FINDINGS {
            tracing::warn!(%shard, store, "node scrub: findings full; a later pass finds this shard again");
            return Ok(false);
        }
        if log
            .findings
            .iter()
            .any(|f| f.store == store && f.shard == shard)
        {
            return Ok(false);
        }
        let seq = log.next;
        log.next = log.next.saturating_add(1);
        log.findings.push(ScrubFinding {
            seq,
            store: store.to_owned(),
            shard,
            reason: reason.to_owned(),
        });
        self.save(&log)?;
        Ok(true)
    }

    /// The findings of `store` not yet acknowledged, oldest first.
    pub fn pending(&self, store: &str) -> Vec<ScrubFinding> {
        self.lock()
            .findings
            .iter()
            .filter(|f| f.store == store)
            .cloned()
            .collect()
    }

    /// Forgets the findings of `store` up to and including `through` (a
    /// gateway has queued them for repair); returns how many.
    pub fn acknowledge(&self, store: &str, through: u64) -> Result<u64, StorageError> {
        let mut log = self.lock();
        let before = log.findings.len();
        log.findings.retain(|f| f.store != store || f.seq > through);
        let removed = (before - log.findings.len()) as u64;
        if removed > 0 {
            self.save(&log)?;
        }
        Ok(removed)
    }

    /// Asks the node's scrub to start a pass now.
    pub fn request_pass(&self) {
        self.requested.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Whether a pass was asked for since the last call.
    pub fn take_request(&self) -> bool {
        self.requested.swap(false, Ordering::Relaxed)
    }

    /// Notified when a pass is asked for (what the scrub worker waits on).
    pub fn wake(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectId;

    fn shard(index: u16) -> ShardId {
        ShardId {
            object: ObjectId([9; 16]),
            part: 1,
            index,
        }
    }

    #[test]
    fn findings_stop_at_their_bound_until_some_are_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scrub.findings");
        // A full file, as a failing disk's pass would leave it.
        let full = Log {
            next: MAX_FINDINGS as u64,
            findings: (0..MAX_FINDINGS)
                .map(|i| ScrubFinding {
                    seq: i as u64,
                    store: "st-a".to_owned(),
                    shard: shard(u16::try_from(i).unwrap()),
                    reason: "bad".to_owned(),
                })
                .collect(),
        };
        std::fs::write(&path, full.encode()).unwrap();
        let scrub = NodeScrub::open(&path).unwrap();
        assert!(!scrub.record("st-b", shard(0), "one too many").unwrap());
        assert_eq!(scrub.pending("st-b"), Vec::new());
        assert_eq!(scrub.acknowledge("st-a", 0).unwrap(), 1);
        assert!(scrub.record("st-b", shard(0), "room again").unwrap());
        assert_eq!(scrub.pending("st-a").len(), MAX_FINDINGS - 1);
    }

    #[test]
    fn findings_survive_a_reopen_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scrub.findings");
        let scrub = NodeScrub::open(&path).unwrap();
        assert!(
            scrub
                .record("st-a", shard(0), "block 3:\nbad xxh3")
                .unwrap()
        );
        assert!(!scrub.record("st-a", shard(0), "again").unwrap());
        assert!(scrub.record("st-b", shard(1), "").unwrap());
        assert!(scrub.record("st-a", shard(2), "short").unwrap());

        let reopened = NodeScrub::open(&path).unwrap();
        let a = reopened.pending("st-a");
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].seq, a[0].shard), (0, shard(0)));
        assert_eq!(a[0].reason, "block 3: bad xxh3");
        assert_eq!(reopened.pending("st-b")[0].seq, 1);

        assert_eq!(reopened.acknowledge("st-a", 0).unwrap(), 1);
        assert_eq!(reopened.acknowledge("st-c", 99).unwrap(), 0);
        let again = NodeScrub::open(&path).unwrap();
        assert_eq!(again.pending("st-a")[0].shard, shard(2));
        assert_eq!(again.pending("st-b").len(), 1);
        // Sequence numbers are never reused, even for a shard found again.
        assert!(again.record("st-a", shard(0), "still bad").unwrap());
        assert_eq!(again.pending("st-a")[1].seq, 3);
    }

    #[test]
    fn unreadable_lines_are_left_out() {
        let log = Log::decode(
            "next 7\n3 st-a nonsense reason\n5 st-b 09090909090909090909090909090909/1/4 x y\n",
        );
        assert_eq!(log.next, 7);
        assert_eq!(log.findings.len(), 1);
        assert_eq!(log.findings[0].reason, "x y");
        assert_eq!(Log::decode(&log.encode()), log);
    }
}
