//! A small thread pool for the quantized executor's many short parallel regions.
//!
//! Decoding one token runs ~120 matrix products of a few hundred microseconds each. A pool
//! whose workers sleep between regions (rayon's) pays a wake-up — a futex and a context
//! switch, tens of microseconds — at every one of them. Here the workers **spin** on a
//! generation counter for a while after each region (`SPIN` polls, ~0.1–1 ms) and only then
//! park on a condition variable, so the regions of one forward pass follow each other without
//! a system call, and an idle pool costs nothing.
//!
//! [`SpinPool::run`] calls `f(i, n)` on `n` threads (the caller is thread 0) and returns when
//! all have finished. It is not re-entrant: a call made while the pool is busy (from inside a
//! region, or from another thread) runs `f(0, 1)` on the caller instead, so results never
//! depend on it.
//!
//! The one `unsafe` here: the job is a borrowed closure whose lifetime is erased while the
//! workers run it; `run` does not return before every worker has finished with it.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;

/// Polls of the generation counter before a worker parks.
const SPIN: usize = 1 << 17;
/// Polls after which a waiting thread starts yielding its core (a machine busy with other
/// processes must not see us spin through whole time slices).
const YIELD_AFTER: usize = 1 << 12;

type Job = dyn Fn(usize, usize) + Sync;

struct Shared {
    /// The current job (a lifetime-erased borrow; valid while `busy` is held by `run`).
    job: UnsafeCell<Option<*const Job>>,
    generation: AtomicUsize,
    done: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    lock: Mutex<usize>,
    wake: Condvar,
    threads: usize,
}

// SAFETY: `job` is written only by the thread holding `SpinPool::busy`, before the generation
// counter is published (Release), and read by workers after they observe it (Acquire); it is
// not touched again until every worker has signalled `done`.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw pointer is only dereferenced during a `run`.
unsafe impl Send for Shared {}

/// A pool of spinning workers; see the module docs.
pub struct SpinPool {
    shared: Arc<Shared>,
    busy: Mutex<()>,
    handles: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SpinPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpinPool")
            .field("threads", &self.shared.threads)
            .finish()
    }
}

impl SpinPool {
    /// A pool of `threads` threads (the caller counts as one; at least 1).
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            job: UnsafeCell::new(None),
            generation: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            lock: Mutex::new(0),
            wake: Condvar::new(),
            threads,
        });
        let handles = (1..threads)
            .map(|i| {
                let s = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("lm-pool-{i}"))
                    .spawn(move || worker(&s, i))
                    .expect("spawning a pool thread")
            })
            .collect();
        Self {
            shared,
            busy: Mutex::new(()),
            handles,
        }
    }

    /// Runs `f(j)` once for every `j in 0..count` on the pool's threads, handing out the
    /// indices one at a time through a shared counter: a thread that finishes early (or a
    /// core the host lends more time) takes the next item instead of waiting for a fixed
    /// share — on a 2-vCPU virtual machine the static halves left each thread idle ~5% of a
    /// batched decoding step. Items should be a few microseconds or more (each costs one
    /// atomic increment).
    pub fn for_each(&self, count: usize, f: &(dyn Fn(usize) + Sync)) {
        let next = AtomicUsize::new(0);
        self.run(&|_, _| {
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= count {
                    break;
                }
                f(j);
            }
        });
    }

    /// Threads, the caller included.
    pub fn threads(&self) -> usize {
        self.shared.threads
    }

    /// Runs `f(i, n)` for `i in 0..n` on the pool's `n` threads and waits for all of them
    /// (or `f(0, 1)` on the caller when the pool is busy or has one thread).
    pub fn run(&self, f: &(dyn Fn(usize, usize) + Sync)) {
        let n = self.shared.threads;
        let guard = match self.busy.try_lock() {
            Ok(g) if n > 1 => g,
            _ => {
                f(0, 1);
                return;
            }
        };
        let s = &*self.shared;
        // SAFETY: only the holder of `busy` writes `job`, and no worker reads it until the
        // generation below changes. The erased lifetime is sound because this function does
        // not return (nor unwind past the wait loop) before every worker has finished `f`.
        unsafe {
            let ptr: *const Job =
                std::mem::transmute::<&(dyn Fn(usize, usize) + Sync), &'static Job>(f);
            *s.job.get() = Some(ptr);
        }
        s.done.store(0, Ordering::Relaxed);
        {
            let sleeping = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.generation.fetch_add(1, Ordering::Release);
            if *sleeping > 0 {
                s.wake.notify_all();
            }
        }
        // A panic in `f` on this thread must still wait for the workers before unwinding.
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(0, n)));
        let mut polls = 0usize;
        while s.done.load(Ordering::Acquire) < n - 1 {
            polls += 1;
            if polls < YIELD_AFTER {
                std::hint::spin_loop();
            } else {
                // Another process holds the core our worker needs: give it up.
                std::thread::yield_now();
            }
        }
        // SAFETY: every worker has finished; nobody else reads `job`.
        unsafe {
            *s.job.get() = None;
        }
        let worker_panicked = s.panicked.swap(false, Ordering::Relaxed);
        drop(guard);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        assert!(!worker_panicked, "a pool worker panicked");
    }
}

fn worker(s: &Shared, i: usize) {
    let mut seen = 0usize;
    loop {
        let mut polls = 0;
        let gen_now = loop {
            let g = s.generation.load(Ordering::Acquire);
            if g != seen || s.shutdown.load(Ordering::Relaxed) {
                break g;
            }
            polls += 1;
            if polls < SPIN {
                if polls > YIELD_AFTER && polls % 64 == 0 {
                    // On a loaded machine, let other processes run while we wait.
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            let mut sleeping = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            *sleeping += 1;
            while s.generation.load(Ordering::Acquire) == seen
                && !s.shutdown.load(Ordering::Relaxed)
            {
                sleeping = s.wake.wait(sleeping).unwrap_or_else(|e| e.into_inner());
            }
            *sleeping -= 1;
            polls = 0;
        };
        if s.shutdown.load(Ordering::Relaxed) {
            return;
        }
        seen = gen_now;
        // SAFETY: the generation changed, so `run` published a job and is waiting for us.
        let job = unsafe { *s.job.get() };
        if let Some(job) = job {
            // SAFETY: the pointer is valid until we signal `done` (see `run`).
            let f = unsafe { &*job };
            // A panicking job must not kill the worker (the caller would wait forever).
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i, s.threads))).is_err() {
                s.panicked.store(true, Ordering::Relaxed);
            }
        }
        s.done.fetch_add(1, Ordering::Release);
    }
}

impl Drop for SpinPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        {
            let _g = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// The process-wide pool: `$LM_THREADS`, else `$RAYON_NUM_THREADS`, else the available
/// parallelism.
pub fn global() -> &'static SpinPool {
    static POOL: OnceLock<SpinPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let from_env = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&n| n > 0)
        };
        let n = from_env("LM_THREADS")
            .or_else(|| from_env("RAYON_NUM_THREADS"))
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        SpinPool::new(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_runs_once_per_region_and_regions_are_ordered() {
        let pool = SpinPool::new(3);
        let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..1000 {
            pool.run(&|i, n| {
                assert_eq!(n, 3);
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
        }
        for h in &hits {
            assert_eq!(h.load(Ordering::Relaxed), 1000);
        }
        // A nested call runs serially on the caller.
        let inner = AtomicUsize::new(0);
        pool.run(&|_, _| {
            pool.run(&|i, n| {
                assert_eq!((i, n), (0, 1));
                inner.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(inner.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn for_each_runs_every_item_exactly_once() {
        let pool = SpinPool::new(2);
        for count in [0usize, 1, 2, 3, 17, 1000] {
            let hits: Vec<AtomicUsize> = (0..count).map(|_| AtomicUsize::new(0)).collect();
            pool.for_each(count, &|j| {
                hits[j].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "{count} items"
            );
        }
        // Nested inside a region: every item still runs once, on the caller.
        let c = AtomicUsize::new(0);
        pool.run(&|_, _| {
            pool.for_each(5, &|_| {
                c.fetch_add(1, Ordering::Relaxed);
            })
        });
        assert_eq!(c.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn workers_wake_after_parking() {
        let pool = SpinPool::new(2);
        let c = AtomicUsize::new(0);
        pool.run(&|_, _| {
            c.fetch_add(1, Ordering::Relaxed);
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        pool.run(&|_, _| {
            c.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(c.load(Ordering::Relaxed), 4);
    }
}
