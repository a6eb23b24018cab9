//! [`LocalDir`]: shard files in a directory on a local disk.
//!
//! Layout under the root:
//!
//! ```text
//! store.id                  the store's identity (see [`StoreIdentity`])
//! shards/<h0h1>/<h2h3>/<object hex>-<part as 8 hex>-<index as 4 hex>
//! tmp/<random>.tmp          writes in progress; removed when the store opens
//! ```
//!
//! `<h0h1>/<h2h3>` are the first four hex digits of the object id, so lexical
//! order of the paths is [`ShardId`] order and no directory grows past a few
//! thousand entries per million objects. Names come only from ids, never from
//! S3 keys. A put writes a temp file (around the page cache, see
//! [`DirectFile`]), fsyncs it, renames it into place and fsyncs the
//! directory, so a shard is either absent or complete. Directories are
//! created 0700 and files 0600: only the server's user reads shards.
//!
//! A put also returns only once the entries of the fan-out directories
//! leading to its file are durable: the writer that creates them fsyncs
//! their parents, and a writer that finds one another writer created but
//! has not yet fsync'd (see [`NewDirs`]) fsyncs them itself. Directories
//! found at open are made durable there (`syncfs`).

use std::collections::HashMap;
use std::fs::File;
use std::io::ErrorKind;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::StreamExt;

use super::direct::DirectFile;
use super::{
    ByteStream, ShardId, ShardReader, ShardStat, ShardStore, StoreHealth, StoreIdentity,
    create_private_dir, io_err, sync_dir,
};
use crate::error::StorageError;

/// Largest chunk a `get` stream yields.
const READ_CHUNK: usize = 1 << 20;

/// A directory of shard files. One process per root.
#[derive(Debug, Clone)]
pub struct LocalDir {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: String,
    /// The identity file's contents (its legacy id may turn renamed).
    identity: Mutex<StoreIdentity>,
    root: PathBuf,
    shards: PathBuf,
    tmp: PathBuf,
    new_dirs: NewDirs,
}

impl LocalDir {
    /// Opens (creating if needed, owner-only) the store at `root`, removes
    /// temp files left by writes that were interrupted (crash, kill, power
    /// loss) and makes what is already there durable. A new store gets a
    /// freshly minted id; an existing one keeps its own, and one whose
    /// identity file is corrupt is refused ([`StorageError::Identity`]).
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalDir, StorageError> {
        Self::open_with(root.into(), None)
    }

    /// Opens the store at `root` like [`LocalDir::open`]; if it was written
    /// by a release before store ids (it has shards but no identity file),
    /// `legacy_id`, the id that release gave it, is recorded beside its new
    /// id until the metadata is renamed ([`LocalDir::mark_legacy_renamed`]).
    pub fn open_migrating(
        root: impl Into<PathBuf>,
        legacy_id: &str,
    ) -> Result<LocalDir, StorageError> {
        Self::open_with(root.into(), Some(legacy_id))
    }

    fn open_with(root: PathBuf, legacy_id: Option<&str>) -> Result<LocalDir, StorageError> {
        let shards = root.join("shards");
        let tmp = root.join("tmp");
        // The identity comes before `shards/`: a new store that crashes
        // in between must not look like one written before ids.
        create_private_dir(&root)
            .map_err(|e| StorageError::io(format!("creating {}", root.display()), e))?;
        let identity = StoreIdentity::load_or_mint(&root, legacy_id)?;
        for dir in [&shards, &tmp] {
            create_private_dir(dir)
                .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
        }
        let stale = std::fs::read_dir(&tmp)
            .map_err(|e| StorageError::io(format!("reading {}", tmp.display()), e))?;
        for entry in stale {
            let path = entry
                .map_err(|e| StorageError::io(format!("reading {}", tmp.display()), e))?
                .path();
            tracing::info!(path = %path.display(), "removing interrupted shard write");
            std::fs::remove_file(&path)
                .map_err(|e| StorageError::io(format!("removing {}", path.display()), e))?;
        }
        sync_dir(&root)?;
        // A previous run may have died between creating a fan-out directory
        // and fsyncing its parent; puts take existing directories as durable.
        File::open(&root)
            .and_then(|d| rustix::fs::syncfs(&d).map_err(Into::into))
            .map_err(|e| {
                StorageError::io(format!("syncing the file system of {}", root.display()), e)
            })?;
        Ok(LocalDir {
            inner: Arc::new(Inner {
                id: identity.id.clone(),
                identity: Mutex::new(identity),
                root,
                shards,
                tmp,
                new_dirs: NewDirs::default(),
            }),
        })
    }

    /// The directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The store's identity as its identity file records it.
    pub fn identity(&self) -> StoreIdentity {
        self.lock_identity().clone()
    }

    /// Records in the identity file that the metadata names this store by
    /// its id everywhere, no longer by its legacy id. Nothing to do for a
    /// store without a legacy id or one already marked.
    pub fn mark_legacy_renamed(&self) -> Result<(), StorageError> {
        let mut identity = self.lock_identity();
        let mut renamed = identity.clone();
        match &mut renamed.legacy {
            Some(legacy) if !legacy.renamed => legacy.renamed = true,
            _ => return Ok(()),
        }
        renamed.write(&self.inner.root)?;
        *identity = renamed;
        Ok(())
    }

    fn lock_identity(&self) -> std::sync::MutexGuard<'_, StoreIdentity> {
        self.inner
            .identity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Path of the file holding shard `id` (whether or not it exists).
    pub fn shard_path(&self, id: ShardId) -> PathBuf {
        let hex = id.object.to_string();
        self.inner
            .shards
            .join(&hex[0..2])
            .join(&hex[2..4])
            .join(id.file_name())
    }

    /// Directory of temp files (writes in progress).
    pub fn tmp_dir(&self) -> &Path {
        &self.inner.tmp
    }
}

/// Fan-out directories this store is creating whose entries (in their
/// parent and grandparent) may not be durable yet, with how many writers
/// are creating each. A directory is added before it is created and removed
/// only once those entries are fsync'd, so a writer that finds a directory
/// on disk and not here may rely on it; one that failed to fsync stays here.
#[derive(Debug, Default)]
struct NewDirs(Mutex<HashMap<PathBuf, usize>>);

impl NewDirs {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<PathBuf, usize>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn contains(&self, dir: &Path) -> bool {
        self.with(|dirs| dirs.contains_key(dir))
    }

    fn begin(&self, dir: &Path) {
        self.with(|dirs| *dirs.entry(dir.to_path_buf()).or_default() += 1);
    }

    fn durable(&self, dir: &Path) {
        self.with(|dirs| {
            if let Some(n) = dirs.get_mut(dir) {
                *n -= 1;
                if *n == 0 {
                    dirs.remove(dir);
                }
            }
        });
    }
}

/// Creates the fan-out directories of a shard path durably: returns once
/// the entries leading to `path`'s directory are on disk, whoever created
/// them. `sync` fsyncs a directory ([`sync_dir`]; tests watch it).
fn ensure_parent(
    new_dirs: &NewDirs,
    path: &Path,
    mut sync: impl FnMut(&Path) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    if dir.is_dir() && !new_dirs.contains(dir) {
        return Ok(());
    }
    new_dirs.begin(dir);
    create_private_dir(dir)
        .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
    // The new directory entries live in the parent and grandparent.
    let mut up = dir.parent();
    for _ in 0..2 {
        if let Some(d) = up {
            sync(d)?;
            up = d.parent();
        }
    }
    new_dirs.durable(dir);
    Ok(())
}

/// Removes a temp file unless the write reached its rename (also on cancellation).
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take()
            && let Err(e) = std::fs::remove_file(&path)
            && e.kind() != ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove temp shard file");
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::io("blocking task", std::io::Error::other(e)))?
}

impl LocalDir {
    /// Opens the file of shard `id` for reading.
    async fn open_shard(&self, id: ShardId) -> Result<(Arc<File>, Arc<PathBuf>), StorageError> {
        let path = self.shard_path(id);
        let opened = path.clone();
        let file = blocking(move || match File::open(&opened) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(StorageError::NotFound(id)),
            Err(e) => Err(io_err("opening", &opened)(e)),
        })
        .await?;
        Ok((Arc::new(file), Arc::new(path)))
    }
}

/// Appends up to `len` bytes of `file` from offset `at` to `buf`, read
/// (`pread`) straight into its spare capacity; fewer only where the file ends.
fn read_at(
    file: &File,
    path: &Path,
    mut buf: Vec<u8>,
    at: u64,
    len: usize,
) -> Result<Vec<u8>, StorageError> {
    let start = buf.len();
    buf.reserve(len);
    while buf.len() < start + len {
        let offset = at + (buf.len() - start) as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), offset) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(io_err("reading", path)(e.into())),
        }
    }
    // The spare capacity may be larger than `len`: drop what was read past it.
    buf.truncate(start + len);
    Ok(buf)
}

/// Turns the kernel's read-ahead off for `file`: a [`FileReader`] asks for
/// whole records, exactly the ones it needs, and the object reader already
/// fetches the next stripe while it decodes one. Speculative read-ahead (up
/// to `read_ahead_kb` a file, 8 MiB on some disks) only queued in front of
/// the records a stripe waits for, across its four or more shard files and
/// every GET at once, and read bytes past the end of ranged GETs. A hint:
/// where it is refused, reads are as before.
fn no_read_ahead(file: &File) {
    if let Err(e) = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::Random) {
        tracing::debug!(error = %e, "read-ahead hint refused");
    }
}

/// Reads of a range of one shard file straight into the caller's buffers.
struct FileReader {
    file: Arc<File>,
    path: Arc<PathBuf>,
    /// What is left of the range.
    range: Range<u64>,
}

#[async_trait::async_trait]
impl ShardReader for FileReader {
    async fn read(&mut self, buf: Vec<u8>, len: usize) -> Result<Vec<u8>, StorageError> {
        if len == 0 {
            return Ok(buf);
        }
        let at = self.range.start;
        if at + len as u64 > self.range.end {
            return Err(StorageError::Format(
                "read past the end of the range".into(),
            ));
        }
        let (file, path) = (Arc::clone(&self.file), Arc::clone(&self.path));
        let start = buf.len();
        let buf = blocking(move || read_at(&file, &path, buf, at, len)).await?;
        if buf.len() < start + len {
            return Err(StorageError::Format("shard ended early".into()));
        }
        self.range.start += len as u64;
        Ok(buf)
    }
}

#[async_trait::async_trait]
impl ShardStore for LocalDir {
    fn id(&self) -> &str {
        &self.inner.id
    }

    async fn put(&self, id: ShardId, mut data: ByteStream) -> Result<u64, StorageError> {
        let target = self.shard_path(id);
        let tmp_path = self
            .inner
            .tmp
            .join(format!("{:016x}.tmp", rand::random::<u64>()));
        let mut guard = TempFile(Some(tmp_path.clone()));
        // Plain files on the blocking pool (tokio::fs would copy every byte
        // once more), written around the page cache.
        let path = tmp_path.clone();
        let mut file =
            blocking(move || DirectFile::create(&path).map_err(io_err("creating", &path))).await?;
        while let Some(chunk) = data.next().await {
            let chunk = chunk?;
            let path = tmp_path.clone();
            file = blocking(move || {
                file.write(&chunk).map_err(io_err("writing", &path))?;
                Ok(file)
            })
            .await?;
        }
        let from = tmp_path.clone();
        let store = Arc::clone(&self.inner);
        let len = blocking(move || {
            let len = file.finish().map_err(io_err("finishing", &from))?;
            ensure_parent(&store.new_dirs, &target, sync_dir)?;
            std::fs::rename(&from, &target).map_err(io_err("renaming into", &target))?;
            if let Some(dir) = target.parent() {
                sync_dir(dir)?;
            }
            Ok(len)
        })
        .await?;
        guard.0 = None;
        metrics::counter!("tessera_storage_local_put_bytes_total").increment(len);
        Ok(len)
    }

    async fn get(&self, id: ShardId, range: Range<u64>) -> Result<ByteStream, StorageError> {
        let (file, path) = self.open_shard(id).await?;
        let stream = futures::stream::try_unfold(range, move |range| {
            let (file, path) = (Arc::clone(&file), Arc::clone(&path));
            async move {
                if range.is_empty() {
                    return Ok(None);
                }
                let want = (range.end - range.start).min(READ_CHUNK as u64) as usize;
                let at = range.start;
                let buf =
                    blocking(move || read_at(&file, &path, Vec::with_capacity(want), at, want))
                        .await?;
                if buf.is_empty() {
                    return Ok(None);
                }
                // A short read means the file ended: stop after this chunk.
                let next = if buf.len() < want {
                    range.end..range.end
                } else {
                    at + want as u64..range.end
                };
                Ok(Some((Bytes::from(buf), next)))
            }
        });
        Ok(stream.boxed())
    }

    async fn open_reader(
        &self,
        id: ShardId,
        range: Range<u64>,
    ) -> Result<Box<dyn ShardReader>, StorageError> {
        let (file, path) = self.open_shard(id).await?;
        no_read_ahead(&file);
        Ok(Box::new(FileReader { file, path, range }))
    }

    async fn stat(&self, id: ShardId) -> Result<Option<ShardStat>, StorageError> {
        let path = self.shard_path(id);
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(Some(ShardStat {
                size: meta.len(),
                modified: meta.modified().map_err(io_err("stat", &path))?,
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("stat", &path)(e)),
        }
    }

    async fn delete(&self, id: ShardId) -> Result<bool, StorageError> {
        let path = self.shard_path(id);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("removing", &path)(e)),
        }
    }

    async fn list(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> Result<Vec<ShardId>, StorageError> {
        let root = self.inner.shards.clone();
        blocking(move || list_blocking(&root, after, limit)).await
    }

    async fn health(&self) -> Result<StoreHealth, StorageError> {
        let inner = self.inner.clone();
        blocking(move || {
            let vfs = rustix::fs::statvfs(&inner.root)
                .map_err(|e| io_err("statvfs", &inner.root)(e.into()))?;
            let ok = inner.tmp.is_dir() && inner.shards.is_dir();
            Ok(StoreHealth {
                capacity: vfs.f_blocks.saturating_mul(vfs.f_frsize),
                free: vfs.f_bavail.saturating_mul(vfs.f_frsize),
                ok,
            })
        })
        .await
    }
}

/// Sorted names of the entries of `dir` (empty if it does not exist).
fn sorted_names(dir: &Path) -> Result<Vec<String>, StorageError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("listing", dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
}

fn list_blocking(
    shards: &Path,
    after: Option<ShardId>,
    limit: usize,
) -> Result<Vec<ShardId>, StorageError> {
    let after_hex = after.map(|a| a.object.to_string()).unwrap_or_default();
    let (after_l1, after_l2) = after_hex.split_at(after_hex.len().min(2));
    let after_l2 = &after_l2[..after_l2.len().min(2)];
    let mut out = Vec::new();
    for l1 in sorted_names(shards)? {
        if l1.as_str() < after_l1 {
            continue;
        }
        for l2 in sorted_names(&shards.join(&l1))? {
            if l1 == after_l1 && l2.as_str() < after_l2 {
                continue;
            }
            for name in sorted_names(&shards.join(&l1).join(&l2))? {
                let Some(id) = ShardId::from_file_name(&name) else {
                    continue;
                };
                if after.is_some_and(|a| id <= a) {
                    continue;
                }
                out.push(id);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectId;

    #[test]
    fn file_names_round_trip_and_sort_like_ids() {
        let a = ShardId {
            object: ObjectId([0xab; 16]),
            part: 0x1234,
            index: 3,
        };
        let b = ShardId { index: 10, ..a };
        assert_eq!(ShardId::from_file_name(&a.file_name()), Some(a));
        assert!(a.file_name() < b.file_name());
        assert_eq!(ShardId::from_file_name("junk"), None);
        assert_eq!(
            ShardId::from_file_name(&format!("{}.tmp", a.file_name())),
            None
        );
    }

    /// Runs [`ensure_parent`] for `shard`, returning the directories it fsync'd.
    fn synced_by(new_dirs: &NewDirs, shard: &Path) -> Vec<PathBuf> {
        let mut synced = Vec::new();
        ensure_parent(new_dirs, shard, |d| {
            synced.push(d.to_path_buf());
            Ok(())
        })
        .unwrap();
        synced
    }

    #[test]
    fn new_fan_out_directories_are_fsynced_before_any_writer_relies_on_them() {
        let tmp = tempfile::tempdir().unwrap();
        let shards = tmp.path().join("shards");
        let leaf = shards.join("ab").join("cd");
        let shard = leaf.join("shard");
        let new_dirs = NewDirs::default();

        // The first writer creates both levels and fsyncs the entries of
        // each in its parent; afterwards the directory is known durable.
        assert_eq!(
            synced_by(&new_dirs, &shard),
            [shards.join("ab"), shards.clone()]
        );
        assert!(leaf.is_dir() && !new_dirs.contains(&leaf));
        assert!(synced_by(&new_dirs, &shard).is_empty());

        // A directory another writer created but has not fsync'd yet: a
        // second writer does not take it as durable, it fsyncs it itself.
        let other = shards.join("ab").join("ef");
        new_dirs.begin(&other);
        std::fs::create_dir(&other).unwrap();
        assert_eq!(
            synced_by(&new_dirs, &other.join("shard")),
            [shards.join("ab"), shards.clone()]
        );
        assert!(new_dirs.contains(&other), "the creator has not finished");
        new_dirs.durable(&other);
        assert!(synced_by(&new_dirs, &other.join("shard")).is_empty());

        // A failed fsync leaves the directory to be fsync'd by the next writer.
        let failing = shards.join("12").join("34");
        let err = ensure_parent(&new_dirs, &failing.join("shard"), |d| {
            Err(StorageError::io(
                format!("syncing {}", d.display()),
                std::io::Error::other("injected"),
            ))
        });
        assert!(err.is_err());
        assert!(failing.is_dir() && new_dirs.contains(&failing));
        assert_eq!(
            synced_by(&new_dirs, &failing.join("shard")),
            [shards.join("12"), shards.clone()]
        );
    }

    #[tokio::test]
    async fn directories_and_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("disk");
        let store = LocalDir::open(&root).unwrap();
        let id = ShardId {
            object: ObjectId([0x5a; 16]),
            part: 1,
            index: 0,
        };
        let data = futures::stream::iter([Ok(Bytes::from_static(b"shard"))]).boxed();
        store.put(id, data).await.unwrap();
        let path = store.shard_path(id);
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(&root)) {
            let mode = std::fs::metadata(d).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", d.display());
            dir = d.parent();
        }
        for file in [path, StoreIdentity::path(&root)] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }
}
