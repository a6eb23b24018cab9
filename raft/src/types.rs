//! The openraft type configuration of the metadata cluster and small helpers
//! shared by the log store, the state machine and the network.

use serde::{Deserialize, Serialize};

use crate::command::{ApplyError, Command, CommandResponse};

/// What one raft entry carries: commands proposed together and applied in
/// order. openraft 0.9 waits for one fsync per entry, so the leader groups
/// the commands waiting to be proposed into one entry: group commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal(pub Vec<Command>);

/// What the state machine answers for one entry: each command's response or
/// deterministic refusal, in order (empty for blank and membership entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalOutcome(pub Vec<Result<CommandResponse, ApplyError>>);

/// Most commands in one proposal.
pub const MAX_PROPOSAL: usize = 4096;

/// The apply sequence number of the `position`-th command of the entry at
/// `log_index`: increasing along the log, as the model's version order needs.
pub(crate) fn command_sequence(log_index: u64, position: usize) -> u64 {
    (log_index << 16) | position as u64
}

openraft::declare_raft_types!(
    /// Tessera's raft types: batches of commands in, outcomes out, snapshots as files.
    pub TypeConfig:
        D = Proposal,
        R = ProposalOutcome,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A member id.
pub type NodeId = u64;
/// A raft log id of this cluster.
pub type LogId = openraft::LogId<NodeId>;
/// A log entry of this cluster.
pub type Entry = openraft::Entry<TypeConfig>;
/// A vote of this cluster.
pub type Vote = openraft::Vote<NodeId>;
/// A storage error as openraft wants it.
pub type StorageError = openraft::StorageError<NodeId>;
/// Membership as stored with the state machine.
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
/// Metadata of a snapshot.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
/// The running raft instance.
pub type Raft = openraft::Raft<TypeConfig>;

/// Wraps any error as an openraft storage error about `subject`.
pub(crate) fn storage_error(
    subject: openraft::ErrorSubject<NodeId>,
    verb: openraft::ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())).into()
}

/// Encodes a record for redb or the wire.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(value)
}

/// Decodes a record written by [`encode`].
pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// Creates `dir` and its missing parents readable by the owner only (0700):
/// the metadata holds sealed secrets and every object's wrapped key.
pub(crate) fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Options that create files readable by the owner only (0600).
pub(crate) fn private_file() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.mode(0o600);
    options
}

/// Opens (or creates, owner-only) a redb file whose page cache holds at most
/// `cache_bytes` (redb's own default is 1 GiB per file). A file closed a
/// moment ago by this process (a member restarting) may still be locked
/// while its last handle finishes dropping: retry that for a few seconds.
pub(crate) fn open_database(
    path: &std::path::Path,
    cache_bytes: usize,
) -> Result<redb::Database, crate::MetaError> {
    // redb creates missing files with the default mode: create it first (an
    // empty file becomes a new database).
    private_file()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
        {
            Err(redb::DatabaseError::DatabaseAlreadyOpen)
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}
