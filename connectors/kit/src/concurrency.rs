//! Bounded request concurrency with in-order commits.
//!
//! A sink may keep up to `max.in.flight.requests` requests open ([`InFlight`]); they complete in any order,
//! but the offset it may commit for a partition advances only over a contiguous prefix of acknowledged
//! requests ([`AckTracker`]): if request 2 of a partition is done and request 1 is not, nothing of either
//! is committable yet.

use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;

/// Identifies one request's share of one partition; hand it back to [`AckTracker::acknowledge`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ticket<P> {
    partition: P,
    sequence: u64,
}

#[derive(Debug)]
struct Lane {
    /// Issued and not yet committable: (sequence, next offset once done, done).
    open: VecDeque<(u64, i64, bool)>,
    next_sequence: u64,
    committable: Option<i64>,
}

/// Per partition, the next offset safe to commit: that of the last request in an unbroken run of
/// acknowledged requests, in the order they were issued.
#[derive(Debug)]
pub struct AckTracker<P> {
    lanes: HashMap<P, Lane>,
}

impl<P> Default for AckTracker<P> {
    fn default() -> Self {
        AckTracker { lanes: HashMap::new() }
    }
}

impl<P: Clone + Eq + Hash> AckTracker<P> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A request will carry `partition`'s records up to (not including) `next_offset`. Issue in offset order.
    pub fn issue(&mut self, partition: P, next_offset: i64) -> Ticket<P> {
        let lane =
            self.lanes.entry(partition.clone()).or_insert_with(|| Lane { open: VecDeque::new(), next_sequence: 0, committable: None });
        let sequence = lane.next_sequence;
        lane.next_sequence += 1;
        lane.open.push_back((sequence, next_offset, false));
        Ticket { partition, sequence }
    }

    /// The request behind `ticket` is done (written, or its records dealt with). Returns the partition's
    /// committable offset if it advanced.
    pub fn acknowledge(&mut self, ticket: &Ticket<P>) -> Option<i64> {
        let lane = self.lanes.get_mut(&ticket.partition)?;
        // Open tickets are in sequence order: find by binary search.
        let index = lane.open.binary_search_by_key(&ticket.sequence, |(s, _, _)| *s).ok()?;
        lane.open[index].2 = true;
        let before = lane.committable;
        while let Some(&(_, next, true)) = lane.open.front() {
            lane.committable = Some(next);
            lane.open.pop_front();
        }
        (lane.committable != before).then_some(lane.committable).flatten()
    }

    /// The next offset safe to commit for `partition` (`None`: nothing acknowledged in order yet).
    pub fn committable(&self, partition: &P) -> Option<i64> {
        self.lanes.get(partition)?.committable
    }

    /// Every partition with a committable offset.
    pub fn all_committable(&self) -> HashMap<P, i64> {
        self.lanes.iter().filter_map(|(p, l)| l.committable.map(|c| (p.clone(), c))).collect()
    }

    /// Requests of `partition` issued and not yet part of the committable prefix.
    pub fn outstanding(&self, partition: &P) -> usize {
        self.lanes.get(partition).map_or(0, |l| l.open.len())
    }

    /// Forget a partition (revoked): its open tickets are ignored from now on.
    pub fn remove(&mut self, partition: &P) {
        self.lanes.remove(partition);
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// At most `limit` requests running at once; results come back as they finish, in any order.
pub struct InFlight<T> {
    limit: usize,
    running: FuturesUnordered<Boxed<T>>,
}

impl<T> InFlight<T> {
    /// `limit` is `max.in.flight.requests` (at least 1).
    pub fn new(limit: usize) -> Self {
        InFlight { limit: limit.max(1), running: FuturesUnordered::new() }
    }
    pub fn len(&self) -> usize {
        self.running.len()
    }
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
    pub fn has_room(&self) -> bool {
        self.running.len() < self.limit
    }

    /// Wait until there is room for one more request, returning the results that made room.
    pub async fn room(&mut self) -> Vec<T> {
        let mut done = Vec::new();
        while !self.has_room() {
            match self.running.next().await {
                Some(result) => done.push(result),
                None => break,
            }
        }
        done
    }

    /// Start a request. Call only when [`has_room`](Self::has_room) (after [`room`](Self::room)); a request
    /// pushed beyond the limit still runs, and a debug build asserts.
    pub fn push(&mut self, request: impl Future<Output = T> + Send + 'static) {
        debug_assert!(self.has_room(), "InFlight::push beyond its limit of {}", self.limit);
        self.running.push(Box::pin(request));
    }

    /// The next result to finish (`None` when nothing runs). Cancel-safe.
    pub async fn next(&mut self) -> Option<T> {
        self.running.next().await
    }

    /// Every result still to come (for flush and shutdown).
    pub async fn drain(&mut self) -> Vec<T> {
        let mut done = Vec::with_capacity(self.running.len());
        while let Some(result) = self.running.next().await {
            done.push(result);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn committable_advances_over_the_acknowledged_prefix_only() {
        let mut t = AckTracker::new();
        let a = t.issue("p0", 10);
        let b = t.issue("p0", 20);
        let c = t.issue("p0", 30);
        let other = t.issue("p1", 5);
        assert_eq!(t.acknowledge(&c), None, "c is done but a and b are not");
        assert_eq!(t.committable(&"p0"), None);
        assert_eq!(t.acknowledge(&other), Some(5), "partitions are independent");
        assert_eq!(t.acknowledge(&a), Some(10));
        assert_eq!(t.acknowledge(&b), Some(30), "b closes the gap: up to c");
        assert_eq!(t.outstanding(&"p0"), 0);
        assert_eq!(t.acknowledge(&b), None, "acknowledging twice changes nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn out_of_order_completion_under_bounded_concurrency() {
        let limit = 3;
        let mut in_flight = InFlight::new(limit);
        let mut tracker = AckTracker::new();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        // Request i carries offsets [10i, 10i+10) of one partition; later requests tend to finish first.
        let delays_ms = [50u64, 10, 30, 5, 40, 1, 20, 15];
        let mut committed = Vec::new();
        for (i, delay) in delays_ms.into_iter().enumerate() {
            for ticket in in_flight.room().await {
                if let Some(c) = tracker.acknowledge(&ticket) {
                    committed.push(c);
                }
            }
            let ticket = tracker.issue(0, (i as i64 + 1) * 10);
            let (running, peak) = (running.clone(), peak.clone());
            in_flight.push(async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                ticket
            });
        }
        for ticket in in_flight.drain().await {
            if let Some(c) = tracker.acknowledge(&ticket) {
                committed.push(c);
            }
        }
        assert!(peak.load(Ordering::SeqCst) <= limit, "at most {limit} requests at once");
        assert_eq!(peak.load(Ordering::SeqCst), limit, "and the limit is used");
        assert!(committed.windows(2).all(|w| w[0] < w[1]), "the committed position only moves forward: {committed:?}");
        assert_eq!(tracker.committable(&0), Some(80), "everything acknowledged in the end");
        // Request 0 takes longest: nothing may be committable before it finished, whatever finished first.
        assert!(committed[0] >= 10);
    }
}
