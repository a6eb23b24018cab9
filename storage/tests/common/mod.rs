//! Helpers shared by the integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tessera_storage::{
    ByteStream, DataKey, Geometry, Memory, MemoryBudget, ObjectId, ObjectLocation, ReadOptions,
    ShardId, ShardStat, ShardStore, StorageError, StoreHealth, WriteOptions, WriteOutcome,
    read_object, write_object,
};

/// Proptest settings for `cases` cases whose failures are saved next to the
/// test file (`tests/NAME.proptest-regressions`, to be committed) and replayed
/// before any new case on every run.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..proptest::test_runner::Config::default()
    }
}

/// One multi-threaded runtime shared by the proptests of a test binary.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Memory stores, the wrappers around them, and the wrappers as trait objects.
pub type FaultyStores = (Vec<Memory>, Vec<Arc<Faulty>>, Vec<Arc<dyn ShardStore>>);

/// `n` memory stores behind [`Faulty`] wrappers.
pub fn faulty_stores(n: usize) -> FaultyStores {
    let (mems, _) = memory_stores(n);
    let faulty: Vec<Arc<Faulty>> = mems
        .iter()
        .map(|m| Faulty::new(Arc::new(m.clone())))
        .collect();
    let dyns = faulty
        .iter()
        .map(|f| f.clone() as Arc<dyn ShardStore>)
        .collect();
    (mems, faulty, dyns)
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A body stream cutting `data` into `chunk`-byte pieces.
pub fn body(
    data: &[u8],
    chunk: usize,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks)
}

/// `n` memory stores, both typed and as trait objects.
pub fn memory_stores(n: usize) -> (Vec<Memory>, Vec<Arc<dyn ShardStore>>) {
    let mems: Vec<Memory> = (0..n).map(|i| Memory::new(format!("mem-{i}"))).collect();
    let dyns = mems
        .iter()
        .map(|m| Arc::new(m.clone()) as Arc<dyn ShardStore>)
        .collect();
    (mems, dyns)
}

/// Collects a stream into bytes or its first error.
pub async fn collect(mut stream: ByteStream) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Reads a whole shard file.
pub async fn shard_file(store: &dyn ShardStore, id: ShardId) -> Vec<u8> {
    collect(store.get(id, 0..u64::MAX).await.unwrap())
        .await
        .unwrap()
}

/// Replaces a whole shard file.
pub async fn put_file(store: &dyn ShardStore, id: ShardId, bytes: Vec<u8>) {
    let stream = futures::stream::once(async move { Ok(Bytes::from(bytes)) }).boxed();
    store.put(id, stream).await.unwrap();
}

/// An object written to memory stores, ready to be read back.
pub struct Written {
    pub object: ObjectId,
    pub key: DataKey,
    pub geometry: Geometry,
    pub mems: Vec<Memory>,
    pub stores: Vec<Arc<dyn ShardStore>>,
    pub outcome: WriteOutcome,
}

impl Written {
    pub fn location(&self) -> ObjectLocation {
        ObjectLocation {
            object: self.object,
            part: 1,
            size: self.outcome.size,
            geometry: self.geometry,
            stores: self.stores.iter().cloned().map(Some).collect(),
        }
    }

    pub fn shard(&self, index: usize) -> ShardId {
        ShardId {
            object: self.object,
            part: 1,
            index: index as u16,
        }
    }

    /// Reads `range`, returning the bytes (or error) and the reported bad shards.
    pub async fn read(&self, range: Range<u64>) -> (Result<Vec<u8>, StorageError>, Vec<u16>) {
        self.read_at(self.location(), range).await
    }

    pub async fn read_at(
        &self,
        loc: ObjectLocation,
        range: Range<u64>,
    ) -> (Result<Vec<u8>, StorageError>, Vec<u16>) {
        let bad = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = bad.clone();
        let opts = ReadOptions {
            shard_timeout: Duration::from_secs(5),
            on_bad_shard: Some(Arc::new(move |id: ShardId, _e: &StorageError| {
                sink.lock().unwrap().push(id.index)
            })),
            // Degraded reads through pooled, reserved buffers too.
            budget: Some(MemoryBudget::new(1 << 20)),
            ..ReadOptions::default()
        };
        let out = collect(read_object(loc, self.key.clone(), range, opts)).await;
        let mut bad = bad.lock().unwrap().clone();
        bad.sort_unstable();
        bad.dedup();
        (out, bad)
    }
}

/// Writes `bytes` as part 1 of a fresh object into fresh memory stores.
pub async fn write_memory(bytes: &[u8], geometry: Geometry, chunk: usize) -> Written {
    let (mems, stores) = memory_stores(geometry.total_shards());
    let object = ObjectId::random();
    let key = DataKey::generate();
    let opts = WriteOptions {
        geometry,
        ..WriteOptions::default()
    };
    let outcome = write_object(&stores, object, 1, &key, &opts, body(bytes, chunk))
        .await
        .unwrap();
    Written {
        object,
        key,
        geometry,
        mems,
        stores,
        outcome,
    }
}

/// A store wrapper that can be told to fail or hang.
#[derive(Debug)]
pub struct Faulty {
    pub inner: Arc<dyn ShardStore>,
    pub fail_puts: AtomicBool,
    pub fail_gets: AtomicBool,
    pub hang_gets: AtomicBool,
    pub hang_puts: AtomicBool,
}

impl Faulty {
    pub fn new(inner: Arc<dyn ShardStore>) -> Arc<Self> {
        Arc::new(Faulty {
            inner,
            fail_puts: AtomicBool::new(false),
            fail_gets: AtomicBool::new(false),
            hang_gets: AtomicBool::new(false),
            hang_puts: AtomicBool::new(false),
        })
    }

    fn refused(&self) -> StorageError {
        StorageError::Unavailable {
            store: self.inner.id().to_string(),
            reason: "injected failure".into(),
        }
    }
}

#[async_trait::async_trait]
impl ShardStore for Faulty {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn put(&self, id: ShardId, mut data: ByteStream) -> Result<u64, StorageError> {
        if self.hang_puts.load(Ordering::SeqCst) {
            // A node gone silent: takes nothing more, never answers.
            let _ = data.next().await;
            futures::future::pending::<()>().await;
        }
        if self.fail_puts.load(Ordering::SeqCst) {
            // Consume a little, then fail like a disk going away mid-write.
            let _ = data.next().await;
            return Err(self.refused());
        }
        self.inner.put(id, data).await
    }

    async fn get(&self, id: ShardId, range: Range<u64>) -> Result<ByteStream, StorageError> {
        if self.hang_gets.load(Ordering::SeqCst) {
            futures::future::pending::<()>().await;
        }
        if self.fail_gets.load(Ordering::SeqCst) {
            return Err(self.refused());
        }
        self.inner.get(id, range).await
    }

    async fn stat(&self, id: ShardId) -> Result<Option<ShardStat>, StorageError> {
        self.inner.stat(id).await
    }

    async fn delete(&self, id: ShardId) -> Result<bool, StorageError> {
        self.inner.delete(id).await
    }

    async fn list(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> Result<Vec<ShardId>, StorageError> {
        self.inner.list(after, limit).await
    }

    async fn health(&self) -> Result<StoreHealth, StorageError> {
        self.inner.health().await
    }
}
