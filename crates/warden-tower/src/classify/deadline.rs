//! First-message deadlines shared by every call of one layer.
//!
//! A call whose message is not there with its headers has to be refused if the message never
//! comes. A Tokio timer per such call costs a timer-wheel insert and, whenever it becomes the
//! runtime's earliest timer, a write to the runtime's wake-up file descriptor: a system call
//! on a path that is otherwise free of them. On loopback about one call in ten waits like
//! this, only microseconds, because clients often write HEADERS and DATA separately.
//!
//! Instead, a waiting call puts its waker into a bucket of one shared, coarse list. Every
//! layer has the same timeout for all its calls, so deadlines arrive in order, and the
//! buckets form a queue: each holds the calls whose deadlines fall into one slice of
//! `timeout / SLICES`. One ticker task per layer sleeps until the oldest bucket is due and
//! wakes its calls. A call that gets its message takes its waker out again; the ticker ends
//! when no bucket is left and starts again with the next waiting call.
//!
//! A call is refused at its own deadline, never before; the ticker wakes it at most one slice
//! later.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Context, Poll, Waker},
    time::Duration,
};

use slab::Slab;
use tokio::time::Instant;

/// How many buckets one timeout spans: the bound on how late a call is woken, as a fraction
/// of the timeout.
const SLICES: u32 = 16;

/// The shared deadlines of one layer.
pub(crate) struct Deadlines {
    timeout: Duration,
    slice: Duration,
    state: Mutex<State>,
}

struct State {
    buckets: VecDeque<Bucket>,
    /// The id of `buckets[0]`. Ids count up and are never reused, so a bucket's index is
    /// `id - first` and a waiter can tell that its bucket is gone.
    first: u64,
    /// A ticker task is running (or scheduled).
    ticking: bool,
}

struct Bucket {
    /// When the ticker wakes this bucket's calls: no earlier than any deadline it holds.
    due: Instant,
    waiters: Slab<Waker>,
}

/// One call's place in the list; dropping it takes the call out.
pub(crate) struct Wait {
    deadlines: Arc<Deadlines>,
    deadline: Instant,
    bucket: u64,
    key: usize,
}

/// The longest timeout kept: a year.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

impl Deadlines {
    pub(crate) fn new(timeout: Duration) -> Arc<Self> {
        // A deadline is an instant: a timeout meant as "never" must not overflow it.
        let timeout = timeout.min(LONGEST_TIMEOUT);
        Arc::new(Self {
            timeout,
            slice: (timeout / SLICES).max(Duration::from_millis(1)),
            state: Mutex::new(State {
                buckets: VecDeque::new(),
                first: 0,
                ticking: false,
            }),
        })
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Ready once the deadline of the call waiting in `wait` has passed; otherwise the call
    /// is (or stays) in the list and `cx`'s waker is woken by its deadline at the latest.
    /// The first call starts the wait. Outside a Tokio runtime nothing could wake the call,
    /// so it waits without a deadline.
    pub(crate) fn poll(
        self: &Arc<Self>,
        wait: &mut Option<Wait>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let now = Instant::now();
        if let Some(current) = wait
            && now >= current.deadline
        {
            *wait = None;
            return Poll::Ready(());
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Poll::Pending;
        };
        let mut state = self.lock();
        match wait {
            Some(current) => {
                match state.waiter(current.bucket, current.key) {
                    Some(waker) => waker.clone_from(cx.waker()),
                    // The bucket can only be gone once its due time (after this deadline)
                    // has passed; keep the call listed anyway rather than unwoken.
                    None => {
                        let (bucket, key) = state.insert(current.deadline, self.slice, cx);
                        current.bucket = bucket;
                        current.key = key;
                    }
                }
            }
            None => {
                let deadline = now + self.timeout;
                let (bucket, key) = state.insert(deadline, self.slice, cx);
                *wait = Some(Wait {
                    deadlines: Arc::clone(self),
                    deadline,
                    bucket,
                    key,
                });
            }
        }
        let start = !state.ticking;
        state.ticking = true;
        drop(state);
        if start {
            runtime.spawn(tick(Ticker {
                deadlines: Arc::clone(self),
                armed: true,
            }));
        }
        Poll::Pending
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held but an allocation failure; the list stays
        // consistent either way.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn waiter(&mut self, bucket: u64, key: usize) -> Option<&mut Waker> {
        let index = usize::try_from(bucket.checked_sub(self.first)?).ok()?;
        self.buckets.get_mut(index)?.waiters.get_mut(key)
    }

    /// Lists a call due at `deadline` in the newest bucket that is due no earlier, opening
    /// a bucket one slice wide when there is none.
    fn insert(&mut self, deadline: Instant, slice: Duration, cx: &Context<'_>) -> (u64, usize) {
        let fits = self.buckets.back().is_some_and(|b| b.due >= deadline);
        if !fits {
            self.buckets.push_back(Bucket {
                due: deadline + slice,
                waiters: Slab::new(),
            });
        }
        let index = self.buckets.len() - 1;
        let key = self.buckets[index].waiters.insert(cx.waker().clone());
        (self.first + index as u64, key)
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        let mut state = self.deadlines.lock();
        let Some(index) = self
            .bucket
            .checked_sub(state.first)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        if let Some(bucket) = state.buckets.get_mut(index) {
            bucket.waiters.try_remove(self.key);
        }
    }
}

/// The running ticker. Dropped without finishing (its runtime shut down), it wakes every
/// listed call so that they start a new ticker in a runtime that still runs.
struct Ticker {
    deadlines: Arc<Deadlines>,
    armed: bool,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.deadlines.lock();
        state.ticking = false;
        let wakers: Vec<Waker> = state
            .buckets
            .iter()
            .flat_map(|b| b.waiters.iter().map(|(_, w)| w.clone()))
            .collect();
        drop(state);
        wakers.into_iter().for_each(Waker::wake);
    }
}

async fn tick(mut ticker: Ticker) {
    let mut due = Vec::new();
    loop {
        let next = {
            let mut state = ticker.deadlines.lock();
            match state.buckets.front() {
                Some(bucket) => bucket.due,
                None => {
                    // Under the lock, so a call listed after this starts a new ticker.
                    state.ticking = false;
                    ticker.armed = false;
                    return;
                }
            }
        };
        tokio::time::sleep_until(next).await;
        {
            let mut state = ticker.deadlines.lock();
            let now = Instant::now();
            while state.buckets.front().is_some_and(|b| b.due <= now) {
                if let Some(bucket) = state.buckets.pop_front() {
                    due.extend(bucket.waiters.into_iter().map(|(_, w)| w));
                }
                state.first += 1;
            }
        }
        due.drain(..).for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use std::{
        future::poll_fn,
        sync::atomic::{AtomicUsize, Ordering},
        task::Wake,
    };

    use super::*;

    /// Counts its wakes.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        (Arc::clone(&counter), Waker::from(counter))
    }

    fn listed(deadlines: &Deadlines) -> usize {
        let state = deadlines.lock();
        state.buckets.iter().map(|b| b.waiters.len()).sum()
    }

    /// Lets the ticker task run (time is paused, so this does not move the clock).
    async fn settle() {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_call_is_refused_at_its_deadline_and_not_before() {
        let deadlines = Deadlines::new(Duration::from_millis(1600));
        let (wakes, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut wait = None;
        let start = Instant::now();
        assert!(deadlines.poll(&mut wait, &mut cx).is_pending());
        settle().await;

        tokio::time::advance(Duration::from_millis(1599)).await;
        settle().await;
        assert!(deadlines.poll(&mut wait, &mut cx).is_pending());
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            0,
            "woken before the deadline"
        );

        // Woken within one slice (100 ms) after the deadline.
        tokio::time::advance(Duration::from_millis(101)).await;
        settle().await;
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(deadlines.poll(&mut wait, &mut cx).is_ready());
        assert!(Instant::now() - start >= Duration::from_millis(1600));
        assert!(wait.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn calls_that_get_their_message_leave_the_list_and_are_never_woken() {
        let deadlines = Deadlines::new(Duration::from_secs(30));
        let (wakes, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut waits: Vec<Option<Wait>> = (0..100).map(|_| None).collect();
        for (i, wait) in waits.iter_mut().enumerate() {
            assert!(deadlines.poll(wait, &mut cx).is_pending());
            if i % 10 == 0 {
                tokio::time::advance(Duration::from_millis(500)).await;
            }
        }
        assert_eq!(listed(&deadlines), 100);
        waits.clear();
        assert_eq!(listed(&deadlines), 0);

        tokio::time::advance(Duration::from_secs(40)).await;
        settle().await;
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
        let state = deadlines.lock();
        assert!(
            state.buckets.is_empty(),
            "every bucket came due and was dropped"
        );
        assert!(!state.ticking, "the ticker ends when no bucket is left");
    }

    #[tokio::test(start_paused = true)]
    async fn the_ticker_starts_again_after_it_ended() {
        let deadlines = Deadlines::new(Duration::from_millis(160));
        for round in 1..=3 {
            let (wakes, waker) = counter();
            let mut cx = Context::from_waker(&waker);
            let mut wait = None;
            assert!(deadlines.poll(&mut wait, &mut cx).is_pending());
            tokio::time::advance(Duration::from_millis(200)).await;
            settle().await;
            assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "round {round}");
            assert!(deadlines.poll(&mut wait, &mut cx).is_ready());
            assert!(!deadlines.lock().ticking, "round {round}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn later_polls_refresh_the_waker_that_is_woken() {
        let deadlines = Deadlines::new(Duration::from_millis(160));
        let (first, first_waker) = counter();
        let (second, second_waker) = counter();
        let mut wait = None;
        assert!(
            deadlines
                .poll(&mut wait, &mut Context::from_waker(&first_waker))
                .is_pending()
        );
        assert!(
            deadlines
                .poll(&mut wait, &mut Context::from_waker(&second_waker))
                .is_pending()
        );
        assert_eq!(listed(&deadlines), 1, "one call, listed once");
        tokio::time::advance(Duration::from_millis(200)).await;
        settle().await;
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn calls_still_time_out_after_the_runtime_that_ran_the_ticker_is_gone() {
        let deadlines = Deadlines::new(Duration::from_millis(80));
        let (wakes, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut wait = None;
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        first.block_on(async {
            assert!(deadlines.poll(&mut wait, &mut cx).is_pending());
            tokio::task::yield_now().await;
        });
        drop(first);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "shutdown wakes the call");
        assert!(!deadlines.lock().ticking);

        let second = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        second.block_on(async {
            let refused = poll_fn(|cx| deadlines.poll(&mut wait, cx));
            tokio::time::timeout(Duration::from_secs(5), refused)
                .await
                .expect("the call is refused once its deadline passes");
        });
    }
}
