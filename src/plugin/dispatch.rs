//! Runs calls that block (plugins doing file I/O) on the blocking pool from one queue: a thread
//! that finishes a call takes the next one itself, and another thread joins only while more
//! than twice as many calls wait as threads run.
//!
//! A `spawn_blocking` per call wakes an idle pool thread for every call and hands the result back
//! across threads: for short calls (a file written in tens of microseconds) those hand-offs cost
//! more than the call. Calls that stay blocked (an `fsync`, a hung network filesystem) still get
//! threads: a call that has waited [`NUDGE_AFTER`] starts another thread, so no call waits long
//! behind one that is stuck.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

/// Another thread starts when more than this many calls per running thread wait. At 1, short
/// calls (a file written) woke more threads for the same work: the initial sync of 10,000 items
/// took 8% longer (median of six alternated runs, BENCHMARKS.md).
const WAITING_PER_THREAD: usize = 2;

/// How long a caller waits before it starts another thread for the queue (if calls still wait
/// and the cap allows): the queue's own trigger starts none while few calls wait, even when
/// every running thread is stuck.
const NUDGE_AFTER: Duration = Duration::from_millis(10);

/// A queued call: runs the closure and sends its result to the caller.
type Job = Box<dyn FnOnce() + Send>;

/// A call that never ran: the runtime was shutting down, so no thread could take it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no thread could take the call (the runtime is shutting down)")]
pub struct NotRun;

/// The queue and its threads.
#[derive(Debug)]
pub struct Dispatcher {
    state: Mutex<State>,
    max_threads: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Pool threads taking calls from the queue now.
    threads: usize,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("queued", &self.queue.len())
            .field("threads", &self.threads)
            .finish()
    }
}

impl Dispatcher {
    /// A dispatcher using at most `max_threads` pool threads at once.
    pub fn new(max_threads: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            max_threads: max_threads.max(1),
        })
    }

    /// Runs `f` on a pool thread and returns what it returned; a panic in `f` resumes here. A
    /// call whose caller stopped waiting before a thread took it is not run.
    pub async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, NotRun>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, mut rx) = oneshot::channel();
        self.submit(Box::new(move || {
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        }));
        let result = loop {
            match tokio::time::timeout(NUDGE_AFTER, &mut rx).await {
                Ok(result) => break result,
                Err(_) => self.nudge(),
            }
        };
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => resume_unwind(panic),
            Err(_) => Err(NotRun),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock and catch their panics: a poisoned lock holds a sound state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job`, and starts a thread when none runs or more than [`WAITING_PER_THREAD`]
    /// calls per running thread wait.
    fn submit(self: &Arc<Self>, job: Job) {
        let mut state = self.lock();
        state.queue.push_back(job);
        let start = state.threads == 0
            || (state.queue.len() > state.threads.saturating_mul(WAITING_PER_THREAD)
                && state.threads < self.max_threads);
        if start {
            self.start(state);
        }
    }

    /// Starts another thread when calls wait and the cap allows.
    fn nudge(self: &Arc<Self>) {
        let state = self.lock();
        if !state.queue.is_empty() && state.threads < self.max_threads {
            self.start(state);
        }
    }

    /// Counts a new thread (under the lock) and starts it.
    fn start(self: &Arc<Self>, mut state: MutexGuard<'_, State>) {
        state.threads += 1;
        drop(state);
        let worker = Worker {
            dispatcher: self.clone(),
            retired: false,
        };
        tokio::task::spawn_blocking(move || worker.work());
    }
}

/// One pool thread's turn at the queue.
struct Worker {
    dispatcher: Arc<Dispatcher>,
    /// Whether it left the count of threads itself (the queue was empty).
    retired: bool,
}

impl Worker {
    fn work(mut self) {
        while let Some(job) = self.next() {
            job();
        }
    }

    /// The next call; `None` once the queue is empty, leaving the count of threads in the same
    /// critical section, so a call queued right after starts a thread of its own.
    fn next(&mut self) -> Option<Job> {
        let mut state = self.dispatcher.lock();
        let job = state.queue.pop_front();
        if job.is_none() {
            state.threads -= 1;
            self.retired = true;
        }
        job
    }
}

impl Drop for Worker {
    /// A worker dropped without running (the runtime is shutting down) leaves the count, and drops
    /// the queued calls so that their callers stop waiting.
    fn drop(&mut self) {
        if self.retired {
            return;
        }
        let dropped = {
            let mut state = self.dispatcher.lock();
            state.threads = state.threads.saturating_sub(1);
            if state.threads == 0 {
                std::mem::take(&mut state.queue)
            } else {
                VecDeque::new()
            }
        };
        drop(dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Runs `calls` calls at once, each sleeping `each`; returns the sum of what they returned
    /// (call `i` returns `2i`) and the most that ran at the same time.
    async fn run_all(dispatcher: &Arc<Dispatcher>, calls: u64, each: Duration) -> (u64, usize) {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..calls {
            let dispatcher = dispatcher.clone();
            let (running, most) = (running.clone(), most.clone());
            set.spawn(async move {
                dispatcher
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(each);
                        running.fetch_sub(1, Ordering::SeqCst);
                        i * 2
                    })
                    .await
            });
        }
        let mut sum = 0;
        while let Some(done) = set.join_next().await {
            sum += done.expect("task").expect("ran");
        }
        (sum, most.load(Ordering::SeqCst))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_every_call_within_the_thread_cap() {
        let dispatcher = Dispatcher::new(3);
        let (sum, most) = run_all(&dispatcher, 200, Duration::from_micros(200)).await;
        assert_eq!(sum, (0..200u64).map(|i| i * 2).sum::<u64>());
        assert!((1..=3).contains(&most), "{most} calls ran at once");
        // Every thread leaves once the queue is empty (the last one just after its result).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while dispatcher.lock().threads > 0 {
            assert!(std::time::Instant::now() < deadline, "a thread never left");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_that_stay_blocked_get_more_threads() {
        let dispatcher = Dispatcher::new(8);
        let (_, most) = run_all(&dispatcher, 8, Duration::from_millis(50)).await;
        // Eight 50 ms calls queued at once: more than one thread took them.
        assert!(most >= 2, "calls ran one at a time");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_resumes_in_the_caller_and_the_queue_goes_on() {
        let dispatcher = Dispatcher::new(1);
        let d = dispatcher.clone();
        let panicked = tokio::spawn(async move { d.run(|| panic!("boom in the call")).await })
            .await
            .expect_err("the panic reaches the caller");
        assert!(panicked.is_panic());
        assert_eq!(dispatcher.run(|| 7).await, Ok(7));
    }

    /// Starts a call that holds its thread until the returned sender sends; returns once it runs.
    async fn hold_a_thread(
        dispatcher: &Arc<Dispatcher>,
    ) -> (
        tokio::task::JoinHandle<Result<(), NotRun>>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel();
        let d = dispatcher.clone();
        let held = tokio::spawn(async move {
            d.run(move || {
                let _ = started_tx.send(());
                let _ = wait.recv();
            })
            .await
        });
        started.await.expect("the held call started");
        (held, release)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_queued_behind_a_stuck_one_gets_a_thread_of_its_own() {
        let dispatcher = Dispatcher::new(4);
        let (stuck, release) = hold_a_thread(&dispatcher).await;
        // One call waiting behind one running thread is below the queue's trigger: only the
        // caller's nudge starts a thread for it, while the first call is still stuck.
        let second = tokio::time::timeout(Duration::from_secs(5), dispatcher.run(|| 42))
            .await
            .expect("the second call ran while the first was stuck");
        assert_eq!(second, Ok(42));
        release.send(()).expect("release");
        stuck.await.expect("task").expect("ran");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_whose_caller_left_is_not_run() {
        let dispatcher = Dispatcher::new(1);
        // The one thread is held by the first call until released.
        let (first, release) = hold_a_thread(&dispatcher).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let d = dispatcher.clone();
        let second = tokio::spawn(async move {
            d.run(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        second.abort();
        assert!(second.await.expect_err("aborted").is_cancelled());
        release.send(()).expect("release");
        first.await.expect("task").expect("ran");
        // The queue is empty again and the dropped call never ran.
        assert_eq!(dispatcher.run(|| ()).await, Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
