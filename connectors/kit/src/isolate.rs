//! Finding the bad records of a batch the target rejects as a whole, by bisection.
//!
//! [`isolate`] writes `0..len`; when the target refuses it for the data's sake, it splits the range in
//! halves and tries each, down to single records, which go to the `reject` callback with the target's own
//! error. Good halves are written as they are found, so for `k` bad records among `n` it takes at most
//! `1 + 2·k·⌈log₂ n⌉` attempts (each bad record fails one range per level, and each failed range costs two
//! tries of its halves), and one attempt when all are good.
//!
//! The connector's classifier decides what an error is about, with connect-core's [`ErrorKind`]: only
//! [`ErrorKind::Data`] (a constraint, a malformed value: the records' fault) is bisected; anything else
//! (a lost connection, HTTP 429 or 5xx, a timeout: [`ErrorKind::Retriable`]; or [`ErrorKind::Fatal`]) ends
//! the search and is returned to the caller, who retries the whole batch later or fails: splitting would
//! only multiply requests to a target that is down.
//!
//! A target with transactions makes each attempt atomic (the Postgres sink runs each under a savepoint and
//! rolls back a failed one), so a failed range leaves nothing behind.

use connect_core::ErrorKind;
use std::future::Future;
use std::ops::Range;

/// One try at writing a range of the batch (indices into the caller's batch).
///
/// A trait rather than a closure: a try borrows the writer's state (a transaction, a statement cache)
/// mutably while it runs, and its future must be `Send` to live in a task's `put`, which the compiler
/// cannot prove for an async closure's borrowing future today.
pub trait Attempt {
    type Error;
    fn attempt(&mut self, range: Range<usize>) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// What a search did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Isolation {
    /// Attempts made (calls of `attempt`).
    pub attempts: usize,
    /// Records handed to `reject`.
    pub rejected: usize,
}

/// Write `0..len` with `attempt`, bisecting data errors down to single records, which go to `reject` with
/// their error, in index order. Returns the first non-data error as is; ranges already written stay written.
/// See the [module docs](self).
pub async fn isolate<A: Attempt>(
    len: usize,
    writer: &mut A,
    classify: impl Fn(&A::Error) -> ErrorKind,
    mut reject: impl FnMut(usize, A::Error),
) -> Result<Isolation, A::Error> {
    let mut stats = Isolation::default();
    // Depth-first, left half first, so good records are written and bad ones reported in batch order.
    let mut ranges: Vec<Range<usize>> = Vec::new();
    if len > 0 {
        ranges.push(0..len);
    }
    while let Some(range) = ranges.pop() {
        stats.attempts += 1;
        match writer.attempt(range.clone()).await {
            Ok(()) => {}
            Err(e) if classify(&e) != ErrorKind::Data => return Err(e),
            Err(e) if range.len() == 1 => {
                stats.rejected += 1;
                reject(range.start, e);
            }
            Err(_) => {
                let mid = range.start + range.len() / 2;
                ranges.push(mid..range.end);
                ranges.push(range.start..mid);
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[derive(Debug, PartialEq)]
    enum TargetError {
        BadRecord(usize),
        Unavailable,
    }

    fn classify(e: &TargetError) -> ErrorKind {
        match e {
            TargetError::BadRecord(_) => ErrorKind::Data,
            TargetError::Unavailable => ErrorKind::Retriable,
        }
    }

    /// A target that rejects a whole request when any record in it is bad, naming the first bad one; after
    /// `down_after` attempts it is unavailable.
    struct Target<'a> {
        bad: &'a BTreeSet<usize>,
        written: Vec<usize>,
        attempts: usize,
        down_after: usize,
    }

    impl Attempt for Target<'_> {
        type Error = TargetError;
        async fn attempt(&mut self, range: Range<usize>) -> Result<(), TargetError> {
            self.attempts += 1;
            if self.attempts > self.down_after {
                return Err(TargetError::Unavailable);
            }
            match range.clone().find(|i| self.bad.contains(i)) {
                Some(i) => Err(TargetError::BadRecord(i)),
                None => {
                    self.written.extend(range);
                    Ok(())
                }
            }
        }
    }

    async fn run(n: usize, bad: &BTreeSet<usize>) -> (Isolation, Vec<usize>, Vec<(usize, TargetError)>) {
        let mut target = Target { bad, written: Vec::new(), attempts: 0, down_after: usize::MAX };
        let mut rejected = Vec::new();
        let stats = isolate(n, &mut target, classify, |i, e| rejected.push((i, e))).await.unwrap();
        assert_eq!(stats.attempts, target.attempts);
        (stats, target.written, rejected)
    }

    #[tokio::test]
    async fn finds_k_bad_among_n_in_k_log_n_attempts() {
        let mut rng = fastrand::Rng::with_seed(12);
        for (n, k) in [(1, 0), (1, 1), (2, 1), (1000, 0), (1000, 1), (1000, 10), (4096, 7), (10_000, 25), (777, 777)] {
            let mut bad = BTreeSet::new();
            while bad.len() < k {
                bad.insert(rng.usize(0..n));
            }
            let (stats, written, rejected) = run(n, &bad).await;
            let log_n = (n as f64).log2().ceil() as usize;
            let bound = 1 + 2 * k * log_n;
            assert!(stats.attempts <= bound, "n={n} k={k}: {} attempts > {bound}", stats.attempts);
            assert_eq!(stats.rejected, k);
            assert_eq!(rejected.iter().map(|(i, _)| *i).collect::<BTreeSet<_>>(), bad, "exactly the bad ones");
            assert!(rejected.iter().all(|(i, e)| *e == TargetError::BadRecord(*i)), "each with the target's own error");
            assert!(rejected.windows(2).all(|w| w[0].0 < w[1].0), "reported in batch order");
            assert_eq!(written, (0..n).filter(|i| !bad.contains(i)).collect::<Vec<_>>(), "every good record, once, in order");
            if k == 0 {
                assert_eq!(stats.attempts, usize::from(n > 0), "a clean batch is one attempt");
            }
        }
        // Far below trying each record alone.
        let (stats, _, _) = run(10_000, &[17, 5_000, 9_999].into()).await;
        assert!(stats.attempts < 100, "{}", stats.attempts);
    }

    #[tokio::test]
    async fn retriable_errors_are_returned_not_bisected() {
        // Record 3 is bad; while bisecting (after 2 attempts), the target goes away.
        let bad = BTreeSet::from([3]);
        let mut target = Target { bad: &bad, written: Vec::new(), attempts: 0, down_after: 2 };
        let result = isolate(100, &mut target, classify, |_, _| panic!("nothing may be rejected")).await;
        assert_eq!(result, Err(TargetError::Unavailable));
        assert_eq!(target.attempts, 3, "no attempt after the retriable error");
        let mut down = Target { bad: &bad, written: Vec::new(), attempts: 0, down_after: 0 };
        assert_eq!(isolate(0, &mut down, classify, |_, _| {}).await, Ok(Isolation::default()), "an empty batch needs no attempt");
    }
}
