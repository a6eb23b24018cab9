//! CPU work of background jobs (repair's decoding and authenticating) on
//! threads of their own at the lowest scheduling priority, so that on a
//! busy machine the cores go to client requests first and a job takes what
//! they leave. Tokio's blocking pool would run it beside a read's
//! decryption at the same priority.
//!
//! One thread per core, started on first use; work is queued in the order
//! it comes. Where the priority cannot be lowered the work still runs, at
//! normal priority.

use std::sync::{Mutex, OnceLock, PoisonError, mpsc};

use crate::error::StorageError;

/// A piece of work for the threads.
type Work = Box<dyn FnOnce() + Send>;

/// The queue the background threads take work from.
static QUEUE: OnceLock<mpsc::Sender<Work>> = OnceLock::new();

/// The nice value the threads run at: the lowest priority.
const NICE: i32 = 19;

/// Queues `f` for a background thread at once; the future returned
/// yields its result (awaiting it is not what starts the work). Work whose
/// future is dropped before a thread takes it up (a cancelled job's) is
/// skipped.
pub fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> impl Future<Output = Result<T, StorageError>> + Send + 'static {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let work: Work = Box::new(move || {
        if !tx.is_closed() {
            let _ = tx.send(f());
        }
    });
    let queued = QUEUE.get_or_init(start).send(work).is_ok();
    async move {
        if !queued {
            return Err(StorageError::Codec(
                "no background thread is running".into(),
            ));
        }
        rx.await
            .map_err(|_| StorageError::Codec("background work panicked".into()))?
    }
}

/// Starts the threads; returns the queue feeding them.
fn start() -> mpsc::Sender<Work> {
    let (tx, rx) = mpsc::channel::<Work>();
    let rx = std::sync::Arc::new(Mutex::new(rx));
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    for n in 0..threads {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("tessera-bg-{n}"))
            .spawn(move || {
                lower_priority();
                loop {
                    let work = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(work) = work else {
                        return;
                    };
                    // A panic is the caller's error (its answer is dropped),
                    // not the end of the thread.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a background thread");
        }
    }
    tx
}

/// Lowers the calling thread's priority (on Linux a nice value is a
/// thread's own).
fn lower_priority() {
    if let Err(e) = rustix::process::setpriority_process(None, NICE) {
        tracing::warn!(error = %e, "background thread: cannot lower its priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_at_the_lowest_priority_and_a_panic_spares_the_threads() {
        let nice = run(|| Ok(rustix::process::getpriority_process(None).ok())).await;
        assert_eq!(nice.unwrap(), Some(NICE));
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        for _ in 0..threads {
            let panicked = run::<()>(|| panic!("a bug in the work")).await;
            assert!(panicked.is_err());
        }
        assert_eq!(run(|| Ok(7)).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn work_given_up_before_it_starts_is_skipped() {
        let within = std::time::Duration::from_secs(60);
        tokio::time::timeout(within, given_up_work())
            .await
            .expect("the threads took up the work within a minute");
    }

    /// The body of the test above.
    async fn given_up_work() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        // Every thread held until the work below is queued and dropped.
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        let holding = Arc::new(AtomicUsize::new(0));
        let holders: Vec<_> = (0..threads)
            .map(|_| {
                let (held, holding) = (held.clone(), holding.clone());
                run(move || {
                    holding.fetch_add(1, Ordering::SeqCst);
                    let _ = held.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    Ok(())
                })
            })
            .collect();
        while holding.load(Ordering::SeqCst) < threads {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let ran = Arc::new(AtomicBool::new(false));
        let given_up = {
            let ran = ran.clone();
            run(move || {
                ran.store(true, Ordering::SeqCst);
                Ok(())
            })
        };
        drop(given_up);
        drop(release);
        for holder in holders {
            holder.await.unwrap();
        }
        // Queued after it: by the time these ran, it was taken up.
        for _ in 0..threads {
            run(|| Ok(())).await.unwrap();
        }
        assert!(!ran.load(Ordering::SeqCst));
    }
}
