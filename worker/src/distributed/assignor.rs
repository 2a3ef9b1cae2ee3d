//! The leader's assignment: incremental and cooperative (KIP-415). Each worker keeps what it runs unless
//! it must give it up; what must move is first revoked (the worker stops it and rejoins at once) and
//! assigned in the next round, so nothing ever runs on two workers. A departed worker's connectors are
//! held back for `scheduled.rebalance.max.delay.ms` (so a worker that restarts quickly gets them back),
//! then spread over the others.
//!
//! The unit is the connector with all its tasks: a connector and its tasks run on one worker.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::protocol::{Allocation, WorkerMetadata, CONNECTOR_TASK};

/// What the leader remembers between rounds.
#[derive(Debug, Default)]
pub struct LeaderState {
    /// Every connector assigned in the last round.
    previous: BTreeSet<String>,
    /// Connectors whose worker left, and when they may be given to another.
    held_until: BTreeMap<String, Instant>,
}

/// One member's share of a round.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Share {
    pub assigned: BTreeSet<String>,
    pub revoked: BTreeSet<String>,
}

impl Share {
    pub fn allocations(&self) -> (Allocation, Allocation) {
        let to_allocation = |set: &BTreeSet<String>| set.iter().map(|c| (c.clone(), vec![CONNECTOR_TASK])).collect();
        (to_allocation(&self.assigned), to_allocation(&self.revoked))
    }
}

/// The connectors a worker says it runs.
pub fn owned(metadata: &WorkerMetadata) -> BTreeSet<String> {
    metadata.allocation.as_ref().map(|a| a.keys().cloned().collect()).unwrap_or_default()
}

/// Compute every member's share. Returns the shares by member id and, when connectors are held back,
/// the delay after which the members should rejoin.
pub fn assign(
    members: &[(String, WorkerMetadata)],
    connectors: &BTreeSet<String>,
    state: &mut LeaderState,
    now: Instant,
    max_delay: Duration,
) -> (BTreeMap<String, Share>, Option<Duration>) {
    let mut members: Vec<(&String, BTreeSet<String>)> = members.iter().map(|(id, m)| (id, owned(m))).collect();
    members.sort_by(|a, b| a.0.cmp(b.0));
    let mut shares: BTreeMap<String, Share> = members.iter().map(|(id, _)| ((*id).clone(), Share::default())).collect();
    let mut keep: BTreeMap<&String, BTreeSet<String>> = BTreeMap::new();
    let mut running: BTreeSet<String> = BTreeSet::new();
    for (id, owned) in &members {
        let share = shares.get_mut(*id).expect("every member has a share");
        let kept = keep.entry(id).or_default();
        for connector in owned {
            // Deleted connectors, and any second copy of one (never expected), are revoked.
            if connectors.contains(connector) && running.insert(connector.clone()) {
                kept.insert(connector.clone());
            } else {
                share.revoked.insert(connector.clone());
            }
        }
    }

    // Connectors nobody runs: new ones go out now; a departed worker's wait for their delay.
    let mut delay: Option<Duration> = None;
    let mut assignable = Vec::new();
    let mut still_held = BTreeMap::new();
    for connector in connectors.difference(&running) {
        let lost = state.previous.contains(connector) || state.held_until.contains_key(connector);
        if lost && !max_delay.is_zero() {
            let until = *state.held_until.get(connector).unwrap_or(&(now + max_delay));
            if until > now {
                still_held.insert(connector.clone(), until);
                let remaining = until - now;
                delay = Some(delay.map_or(remaining, |d: Duration| d.min(remaining)));
                continue;
            }
        }
        assignable.push(connector.clone());
    }
    state.held_until = still_held;

    // Quotas: the total spread as evenly as it goes, the larger quotas to those that run most now.
    let total = keep.values().map(BTreeSet::len).sum::<usize>() + assignable.len();
    let count = members.len().max(1);
    let (base, extra) = (total / count, total % count);
    let mut by_load: Vec<&String> = members.iter().map(|(id, _)| *id).collect();
    by_load.sort_by_key(|id| std::cmp::Reverse(keep[id].len()));
    let quota: BTreeMap<&String, usize> = by_load.iter().enumerate().map(|(i, id)| (*id, base + usize::from(i < extra))).collect();

    for (id, kept) in keep.iter_mut() {
        while kept.len() > quota[id] {
            let surplus = kept.pop_last().expect("non-empty above its quota");
            shares.get_mut(*id).expect("member").revoked.insert(surplus);
        }
    }
    for connector in assignable {
        let target = keep
            .iter()
            .filter(|(id, kept)| kept.len() < quota[*id])
            .min_by_key(|(id, kept)| (kept.len(), *id))
            .map(|(id, _)| (*id).clone());
        let Some(target) = target else { break };
        keep.get_mut(&target).expect("member").insert(connector.clone());
        shares.get_mut(&target).expect("member").assigned.insert(connector);
    }
    state.previous = keep.values().flatten().cloned().collect();
    (shares, delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, owned: &[&str]) -> (String, WorkerMetadata) {
        let allocation = owned.iter().map(|c| (c.to_string(), vec![CONNECTOR_TASK])).collect();
        (id.to_string(), WorkerMetadata { url: format!("http://{id}"), config_offset: 0, allocation: Some(allocation) })
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn names(n: usize) -> BTreeSet<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn new_connectors_spread_evenly() {
        let mut state = LeaderState::default();
        let members = [member("a", &[]), member("b", &[]), member("c", &[])];
        let (shares, delay) = assign(&members, &names(7), &mut state, Instant::now(), Duration::ZERO);
        let sizes: Vec<usize> = shares.values().map(|s| s.assigned.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 7);
        assert!(sizes.iter().all(|&n| n == 2 || n == 3), "{sizes:?}");
        assert!(shares.values().all(|s| s.revoked.is_empty()));
        assert_eq!(delay, None);
    }

    #[test]
    fn adding_a_connector_moves_nothing() {
        let mut state = LeaderState::default();
        let members = [member("a", &["c0", "c1"]), member("b", &["c2", "c3"])];
        let (shares, _) = assign(&members, &names(5), &mut state, Instant::now(), Duration::ZERO);
        assert!(shares.values().all(|s| s.revoked.is_empty()));
        assert_eq!(shares.values().map(|s| s.assigned.len()).sum::<usize>(), 1);
    }

    #[test]
    fn a_new_worker_gets_work_revoked_first_then_assigned() {
        let mut state = LeaderState::default();
        let now = Instant::now();
        let members = [member("a", &["c0", "c1", "c2"]), member("b", &["c3", "c4", "c5"]), member("c", &[])];
        let (shares, _) = assign(&members, &names(6), &mut state, now, Duration::from_secs(60));
        assert_eq!(shares["a"].revoked.len(), 1);
        assert_eq!(shares["b"].revoked.len(), 1);
        assert!(shares["c"].assigned.is_empty(), "revoked work is assigned in the next round");
        // Next round: a and b stopped what they gave up; c gets both at once (no delay for revoked work).
        let a: Vec<&str> = ["c0", "c1", "c2"].into_iter().filter(|c| !shares["a"].revoked.contains(*c)).collect();
        let b: Vec<&str> = ["c3", "c4", "c5"].into_iter().filter(|c| !shares["b"].revoked.contains(*c)).collect();
        let members = [member("a", &a), member("b", &b), member("c", &[])];
        let (shares, delay) = assign(&members, &names(6), &mut state, now, Duration::from_secs(60));
        assert_eq!(shares["c"].assigned.len(), 2);
        assert!(shares["a"].assigned.is_empty() && shares["b"].assigned.is_empty());
        assert_eq!(delay, None);
    }

    #[test]
    fn a_departed_workers_connectors_wait_for_the_delay() {
        let mut state = LeaderState::default();
        let now = Instant::now();
        let all = [member("a", &["c0", "c1"]), member("b", &["c2", "c3"])];
        assign(&all, &names(4), &mut state, now, Duration::from_secs(10));
        let survivors = [member("a", &["c0", "c1"])];
        let (shares, delay) = assign(&survivors, &names(4), &mut state, now + Duration::from_secs(1), Duration::from_secs(10));
        assert!(shares["a"].assigned.is_empty());
        assert_eq!(delay, Some(Duration::from_secs(10)));
        let (shares, delay) = assign(&survivors, &names(4), &mut state, now + Duration::from_secs(5), Duration::from_secs(10));
        assert!(shares["a"].assigned.is_empty());
        assert_eq!(delay, Some(Duration::from_secs(6)));
        let (shares, delay) = assign(&survivors, &names(4), &mut state, now + Duration::from_secs(11), Duration::from_secs(10));
        assert_eq!(shares["a"].assigned, set(&["c2", "c3"]));
        assert_eq!(delay, None);
    }

    #[test]
    fn zero_delay_reassigns_at_once_and_deleted_connectors_are_revoked() {
        let mut state = LeaderState::default();
        let now = Instant::now();
        assign(&[member("a", &["c0"]), member("b", &["c1", "c2"])], &names(3), &mut state, now, Duration::ZERO);
        let (shares, _) = assign(&[member("a", &["c0"])], &set(&["c0", "c1"]), &mut state, now, Duration::ZERO);
        assert_eq!(shares["a"].assigned, set(&["c1"]));
        let (shares, _) = assign(&[member("a", &["c0", "c1"])], &set(&["c1"]), &mut state, now, Duration::ZERO);
        assert_eq!(shares["a"].revoked, set(&["c0"]));
    }

    #[test]
    fn a_connector_reported_twice_stays_with_one_worker() {
        let mut state = LeaderState::default();
        let (shares, _) = assign(&[member("a", &["c0"]), member("b", &["c0"])], &names(1), &mut state, Instant::now(), Duration::ZERO);
        assert_eq!(shares["a"].revoked.len() + shares["b"].revoked.len(), 1);
    }
}
