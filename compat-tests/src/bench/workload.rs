//! The workloads: what one operation slot does, and a phase that runs slots
//! on `concurrency` workers until a count of operations or a duration is used up.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::s3::BenchBucket;
use super::stats::{Moved, OpKind, Outcome, Recorder};

/// Which load to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Upload objects.
    Put,
    /// Upload `--objects` objects, then download them.
    Get,
    /// Upload `--objects` objects, then mix GET, PUT, DELETE and LIST on them.
    Mixed,
    /// Upload `--objects` objects, then list them all, repeatedly.
    List,
}

impl Workload {
    /// The workload's lower-case name, also the name of its measured phase.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::Mixed => "mixed",
            Workload::List => "list",
        }
    }
}

/// Relative weights of the operations in a mixed workload, written
/// `get=60,put=25,delete=10,list=5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Mix {
    /// Weight of GET.
    pub get: u32,
    /// Weight of PUT (of a new key).
    pub put: u32,
    /// Weight of DELETE (of an existing key).
    pub delete: u32,
    /// Weight of LIST (of all the run's keys).
    pub list: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            get: 60,
            put: 25,
            delete: 10,
            list: 5,
        }
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut mix = Mix {
            get: 0,
            put: 0,
            delete: 0,
            list: 0,
        };
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, weight) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}`: expected OP=WEIGHT"))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("`{item}`: weight must be a whole number"))?;
            let slot = match name.trim().to_ascii_lowercase().as_str() {
                "get" => &mut mix.get,
                "put" => &mut mix.put,
                "delete" => &mut mix.delete,
                "list" => &mut mix.list,
                other => {
                    return Err(format!(
                        "unknown operation `{other}` (get, put, delete, list)"
                    ));
                }
            };
            *slot = weight;
        }
        if mix.total() == 0 {
            return Err("the mix needs at least one operation with a weight above 0".into());
        }
        Ok(mix)
    }
}

impl Mix {
    fn total(&self) -> u32 {
        self.get + self.put + self.delete + self.list
    }

    /// The operation at position `ticket` (`0..total`) of the weights.
    fn pick(&self, ticket: u32) -> OpKind {
        let mut ticket = ticket;
        for (kind, weight) in [
            (OpKind::Get, self.get),
            (OpKind::Put, self.put),
            (OpKind::Delete, self.delete),
        ] {
            if ticket < weight {
                return kind;
            }
            ticket -= weight;
        }
        OpKind::List
    }
}

/// The keys of a run: `{prefix}obj-00000042`.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (which should end in `/`).
    pub fn new(prefix: String) -> Self {
        Keys { prefix }
    }

    /// The prefix every key of the run starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The prefix of the objects the measured phases use.
    pub fn objects_prefix(&self) -> String {
        format!("{}obj-", self.prefix)
    }

    /// The `index`th object key.
    pub fn object(&self, index: u64) -> String {
        format!("{}obj-{index:08}", self.prefix)
    }

    /// The `index`th key written during a PUT warm-up.
    fn warmup(&self, index: u64) -> String {
        format!("{}warmup-{index:08}", self.prefix)
    }
}

/// What each operation slot of a phase does.
#[derive(Debug)]
pub enum Job {
    /// PUT object `i` (or warm-up key `i`).
    Put {
        /// The run's keys.
        keys: Keys,
        /// Write warm-up keys rather than object keys.
        warmup: bool,
    },
    /// GET object `i % objects`.
    Get {
        /// The run's keys.
        keys: Keys,
        /// How many objects were uploaded.
        objects: u64,
    },
    /// LIST all objects, expecting exactly `objects` keys.
    List {
        /// The run's keys.
        keys: Keys,
        /// How many objects were uploaded.
        objects: u64,
    },
    /// Pick an operation by weight over a pool of existing objects.
    Mixed(MixedState),
}

/// The objects a mixed workload may read or delete, and the next new key.
#[derive(Debug)]
pub struct MixedState {
    keys: Keys,
    mix: Mix,
    /// Indexes of objects that exist and no worker is reading or deleting.
    idle: Mutex<Vec<u64>>,
    next_new: AtomicU64,
}

impl MixedState {
    /// Starts from objects `0..objects`, all present.
    pub fn new(keys: Keys, mix: Mix, objects: u64) -> Self {
        MixedState {
            keys,
            mix,
            idle: Mutex::new((0..objects).collect()),
            next_new: AtomicU64::new(objects),
        }
    }

    /// Takes a random idle object out of the pool, so no one deletes it meanwhile.
    fn take_idle(&self) -> Option<u64> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.is_empty() {
            return None;
        }
        let at = rand::random_range(0..idle.len());
        Some(idle.swap_remove(at))
    }

    fn give_back(&self, index: u64) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(index);
    }

    async fn run(&self, bucket: &BenchBucket) -> Outcome {
        let kind = self.mix.pick(rand::random_range(0..self.mix.total()));
        let existing = match kind {
            OpKind::Get | OpKind::Delete => self.take_idle(),
            OpKind::Put | OpKind::List => None,
        };
        match (kind, existing) {
            (OpKind::Get, Some(index)) => {
                let outcome = timed(OpKind::Get, bucket.get(&self.keys.object(index))).await;
                self.give_back(index);
                outcome
            }
            (OpKind::Delete, Some(index)) => {
                timed(OpKind::Delete, bucket.delete(&self.keys.object(index))).await
            }
            (OpKind::List, _) => {
                let prefix = self.keys.objects_prefix();
                timed(OpKind::List, async {
                    let keys = bucket.list(&prefix).await?;
                    Ok(Moved {
                        bytes: 0,
                        keys: keys.len() as u64,
                    })
                })
                .await
            }
            // A PUT, or a GET or DELETE with nothing left to read: write a new object.
            _ => {
                let index = self.next_new.fetch_add(1, Ordering::Relaxed);
                let outcome = timed(OpKind::Put, bucket.put(&self.keys.object(index))).await;
                if outcome.result.is_ok() {
                    self.give_back(index);
                }
                outcome
            }
        }
    }
}

impl Job {
    /// Runs operation number `index` of the phase.
    pub async fn run(&self, bucket: &BenchBucket, index: u64) -> Outcome {
        match self {
            Job::Put { keys, warmup } => {
                let key = if *warmup {
                    keys.warmup(index)
                } else {
                    keys.object(index)
                };
                timed(OpKind::Put, bucket.put(&key)).await
            }
            Job::Get { keys, objects } => {
                let key = keys.object(index % (*objects).max(1));
                timed(OpKind::Get, bucket.get(&key)).await
            }
            Job::List { keys, objects } => {
                let prefix = keys.objects_prefix();
                let objects = *objects;
                timed(OpKind::List, async {
                    let listed = bucket.list(&prefix).await?.len() as u64;
                    if listed != objects {
                        return Err(format!("listed {listed} keys, expected {objects}"));
                    }
                    Ok(Moved {
                        bytes: 0,
                        keys: listed,
                    })
                })
                .await
            }
            Job::Mixed(state) => state.run(bucket).await,
        }
    }
}

/// Times one operation.
async fn timed(kind: OpKind, operation: impl Future<Output = Result<Moved, String>>) -> Outcome {
    let started = Instant::now();
    let result = operation.await;
    Outcome {
        kind,
        latency: started.elapsed(),
        result,
    }
}

/// When a phase stops: after `ops` operations, after `duration`, or whichever
/// comes first.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Total operations over all workers.
    pub ops: Option<u64>,
    /// No operation starts after this much time.
    pub duration: Option<Duration>,
    /// Operations started per second over all workers at most (operation
    /// `i` starts no earlier than `i / rate` seconds into the phase): a
    /// steady load rather than as much as the server takes.
    pub rate: Option<f64>,
}

/// Runs `job` on `concurrency` workers until `limit`; returns the merged
/// samples and the phase's wall time (until the last operation finished).
pub async fn run_phase(
    bucket: &BenchBucket,
    job: Arc<Job>,
    concurrency: usize,
    limit: Limit,
) -> (Recorder, Duration) {
    let started = Instant::now();
    let deadline = limit.duration.map(|d| started + d);
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (bucket, job, next) = (bucket.clone(), Arc::clone(&job), Arc::clone(&next));
        workers.spawn(async move {
            let mut recorder = Recorder::default();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                if limit.ops.is_some_and(|ops| index >= ops) {
                    break;
                }
                if let Some(rate) = limit.rate.filter(|r| *r > 0.0) {
                    let at = started + Duration::from_secs_f64(index as f64 / rate);
                    tokio::time::sleep_until(at.into()).await;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                }
                recorder.record(job.run(&bucket, index).await);
            }
            recorder
        });
    }
    let mut merged = Recorder::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(recorder) => merged.merge(recorder),
            // A worker can only end abnormally by panicking: surface it.
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
    (merged, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_picks_by_weight() {
        let mix: Mix = "get=2, put=1,list=1".parse().unwrap();
        assert_eq!(
            mix,
            Mix {
                get: 2,
                put: 1,
                delete: 0,
                list: 1
            }
        );
        let picks: Vec<OpKind> = (0..mix.total()).map(|t| mix.pick(t)).collect();
        assert_eq!(picks, [OpKind::Get, OpKind::Get, OpKind::Put, OpKind::List]);
        assert!("get=0".parse::<Mix>().is_err());
        assert!("stat=5".parse::<Mix>().is_err());
        assert!("get".parse::<Mix>().is_err());
    }

    #[test]
    fn keys_sort_in_index_order() {
        let keys = Keys::new("run/".into());
        assert_eq!(keys.object(42), "run/obj-00000042");
        assert!(keys.object(9) < keys.object(10));
        assert!(keys.object(7).starts_with(&keys.objects_prefix()));
        assert!(!keys.warmup(7).starts_with(&keys.objects_prefix()));
    }
}
