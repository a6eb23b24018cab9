//! Shard identities and the [`ShardStore`] trait every backend implements
//! (with [`ShardReader`], its reads into the caller's buffers).

mod direct;
mod identity;
mod local;
mod memory;
mod remote;
mod s3;

pub use identity::{ID_FILE, LegacyId, StoreIdentity};
pub use local::LocalDir;
pub use memory::Memory;
pub use remote::{NodeQueryError, Remote};
pub use s3::{PART_SIZE as S3_PART_SIZE, S3Bucket, S3BucketConfig, S3Error, sigv4};

use std::fmt;
use std::ops::Range;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::str::FromStr;
use std::time::SystemTime;

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::format::ShardSummary;
pub use crate::node::protocol::ScrubFinding;

/// Creates `dir` and its missing parents readable by their owner only
/// (0700), as everything under a data directory is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Replaces `path` with `contents` plus a newline, durably and owner-only
/// (0600): written to `path.tmp`, fsynced, renamed over `path`, and the
/// directory fsynced, so a crash leaves the old file or the new one.
pub fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// fsyncs a directory so renames and creations inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(format!("syncing directory {}", dir.display()), e))
}

/// Turns an I/O error of `what` (an operation) on `path` into a [`StorageError::Io`].
pub(crate) fn io_err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let context = format!("{what} {}", path.display());
    move |e| StorageError::io(context, e)
}

/// A stream of bytes in or out of a store (or of an object).
pub type ByteStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, StorageError>>;

/// Names one stored object version (or segment): 16 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct ObjectId(pub [u8; 16]);

impl ObjectId {
    /// A fresh random id.
    pub fn random() -> Self {
        ObjectId(rand::random())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = StorageError;

    /// Parses the 32-digit hex form written by `Display`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(s, &mut id)
            .map_err(|e| StorageError::Format(format!("bad object id {s:?}: {e}")))?;
        Ok(ObjectId(id))
    }
}

/// Names one shard file: shard `index` of `part` of `object`.
///
/// Ordered by object, then part, then index (the order [`ShardStore::list`] pages in).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct ShardId {
    /// The object (version or segment) the shard belongs to.
    pub object: ObjectId,
    /// Part number inside the object.
    pub part: u32,
    /// Shard index: `0..k` data, `k..k+m` parity.
    pub index: u16,
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.object, self.part, self.index)
    }
}

impl FromStr for ShardId {
    type Err = StorageError;

    /// Parses the `object/part/index` form written by `Display`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || StorageError::Format(format!("bad shard id {s:?}"));
        let mut parts = s.split('/');
        let (Some(object), Some(part), Some(index), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(ShardId {
            object: object.parse()?,
            part: part.parse().map_err(|_| bad())?,
            index: index.parse().map_err(|_| bad())?,
        })
    }
}

impl ShardId {
    /// The shard's file (or object) name, `<object hex>-<part as 8 hex>-<index
    /// as 4 hex>`: fixed width, so names sort like ids.
    pub fn file_name(&self) -> String {
        format!("{}-{:08x}-{:04x}", self.object, self.part, self.index)
    }

    /// The id a [`ShardId::file_name`] names; `None` for any other name.
    pub fn from_file_name(name: &str) -> Option<ShardId> {
        let mut it = name.split('-');
        let object: ObjectId = it.next()?.parse().ok()?;
        let part = it.next().filter(|p| p.len() == 8)?;
        let index = it.next().filter(|i| i.len() == 4)?;
        if it.next().is_some() {
            return None;
        }
        Some(ShardId {
            object,
            part: u32::from_str_radix(part, 16).ok()?,
            index: u16::from_str_radix(index, 16).ok()?,
        })
    }
}

/// What a store knows about one stored shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStat {
    /// File size in bytes.
    pub size: u64,
    /// When it was last written (GC uses it to spare shards of uploads in progress).
    pub modified: SystemTime,
}

/// A store's capacity and state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreHealth {
    /// Total bytes of the underlying device.
    pub capacity: u64,
    /// Bytes still available for new shards.
    pub free: u64,
    /// Whether the store accepts reads and writes.
    pub ok: bool,
}

/// A place that keeps shard files: a local directory, memory, a remote node,
/// an S3 bucket.
///
/// Everything is owned and streamed (no borrowed lifetimes across awaits) so the
/// trait can be served over a network.
#[async_trait::async_trait]
pub trait ShardStore: Send + Sync + fmt::Debug + 'static {
    /// Stable id of the store, unique in the cluster: what placement
    /// records, metrics and the admin status name it by (a local directory's
    /// is minted once and kept in its root, `st-` and 16 hex digits: see
    /// [`StoreIdentity`]).
    fn id(&self) -> &str;

    /// Stores a whole shard file from `data`, replacing any previous one.
    /// Returns the number of bytes stored; the shard is durable when this returns `Ok`.
    /// A failing or abandoned `data` stream leaves no shard behind.
    async fn put(&self, id: ShardId, data: ByteStream) -> Result<u64, StorageError>;

    /// Streams bytes `range` of the shard file. A range past the end yields
    /// only the bytes that exist (the caller notices the short read).
    async fn get(&self, id: ShardId, range: Range<u64>) -> Result<ByteStream, StorageError>;

    /// Opens bytes `range` of the shard file for reading in pieces into the
    /// caller's buffers (the object reader's pooled block buffers). A range
    /// past the end fails when a read reaches it. The default copies from
    /// [`ShardStore::get`]'s stream; a store that can read straight into the
    /// buffer (a file: `pread`) does so.
    async fn open_reader(
        &self,
        id: ShardId,
        range: Range<u64>,
    ) -> Result<Box<dyn ShardReader>, StorageError> {
        Ok(Box::new(StreamReader::new(self.get(id, range).await?)))
    }

    /// Size and age of the shard, `None` when absent.
    async fn stat(&self, id: ShardId) -> Result<Option<ShardStat>, StorageError>;

    /// Removes the shard; `Ok(false)` when it was absent.
    async fn delete(&self, id: ShardId) -> Result<bool, StorageError>;

    /// Up to `limit` shard ids greater than `after`, in ascending order.
    async fn list(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> Result<Vec<ShardId>, StorageError>;

    /// Capacity, free space and state.
    async fn health(&self) -> Result<StoreHealth, StorageError>;

    /// The store's own scrub, when it verifies its shards where they are
    /// (a storage node's disks) instead of having them read back; `None`
    /// (the default) when a scrub must read its shards.
    fn self_scrubbing(&self) -> Option<&dyn SelfScrubbing> {
        None
    }
}

/// A store that verifies its own shards (see
/// [`ShardStore::self_scrubbing`]) and reports the bad ones until told
/// they are taken care of.
#[async_trait::async_trait]
pub trait SelfScrubbing: Send + Sync {
    /// The shards its scrub found bad and nobody has acknowledged yet.
    async fn scrub_findings(&self) -> Result<Vec<ScrubFinding>, StorageError>;

    /// Forgets the findings up to and including sequence number `through`:
    /// call it only once they are queued for repair, durably.
    async fn acknowledge_findings(&self, through: u64) -> Result<(), StorageError>;

    /// Starts a scrub pass now instead of at its next turn.
    async fn start_scrub(&self) -> Result<(), StorageError>;

    /// Checks shard `id` where it is, as [`crate::scrub_shard`] does
    /// reading it, without moving its bytes.
    async fn verify_shard(&self, id: ShardId) -> Result<ShardSummary, StorageError>;
}

/// Consecutive reads of a byte range of one shard (see [`ShardStore::open_reader`]).
#[async_trait::async_trait]
pub trait ShardReader: Send {
    /// Appends the next `len` bytes of the range to `buf` and returns it;
    /// fails if the shard (or the range) ends first.
    async fn read(&mut self, buf: Vec<u8>, len: usize) -> Result<Vec<u8>, StorageError>;
}

/// A [`ShardReader`] over a [`ByteStream`]: copies its chunks into the buffers.
struct StreamReader {
    stream: ByteStream,
    head: Bytes,
}

impl StreamReader {
    /// Reads from `stream`.
    fn new(stream: ByteStream) -> Self {
        StreamReader {
            stream,
            head: Bytes::new(),
        }
    }
}

#[async_trait::async_trait]
impl ShardReader for StreamReader {
    async fn read(&mut self, mut buf: Vec<u8>, len: usize) -> Result<Vec<u8>, StorageError> {
        let want = buf.len() + len;
        buf.reserve(len);
        while buf.len() < want {
            if self.head.is_empty() {
                self.head = match self.stream.next().await {
                    Some(chunk) => chunk?,
                    None => return Err(StorageError::Format("shard ended early".into())),
                };
            }
            let take = (want - buf.len()).min(self.head.len());
            buf.extend_from_slice(&self.head.split_to(take));
        }
        Ok(buf)
    }
}
