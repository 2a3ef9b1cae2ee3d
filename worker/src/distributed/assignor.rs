//! The leader's assignment: incremental and cooperative (KIP-415). Each worker keeps what it runs unless
//! it must give it up; what must move is first revoked (the worker stops it and rejoins at once) and
//! assigned in the next round, so nothing ever runs on two workers. A departed worker's work is held
//! back for `scheduled.rebalance.max.delay.ms` (so a worker that restarts quickly gets it back), then
//! spread over the others.
//!
//! The units are connector instances and tasks, as in Kafka Connect: the tasks of one connector spread
//! over the workers, and connectors and tasks are balanced each on their own.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::protocol::{Allocation, WorkerMetadata, CONNECTOR_TASK};

/// What the leader hands out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    /// A connector instance: it generates the task configs.
    Connector(String),
    /// One task of a connector.
    Task(String, u32),
}

impl Unit {
    pub fn connector(&self) -> &str {
        match self {
            Unit::Connector(name) | Unit::Task(name, _) => name,
        }
    }

    fn is_task(&self) -> bool {
        matches!(self, Unit::Task(..))
    }
}

/// Every unit of these connectors: each instance, and the tasks the config topic holds for it.
pub fn units<'a>(connectors: impl IntoIterator<Item = (&'a String, usize)>) -> BTreeSet<Unit> {
    let mut units = BTreeSet::new();
    for (name, tasks) in connectors {
        units.insert(Unit::Connector(name.clone()));
        units.extend((0..tasks as u32).map(|id| Unit::Task(name.clone(), id)));
    }
    units
}

/// Units as Kafka Connect's protocol lists them: per connector, its task ids, the instance as -1.
pub fn to_allocation<'a>(units: impl IntoIterator<Item = &'a Unit>) -> Allocation {
    let mut allocation = Allocation::new();
    for unit in units {
        let (name, id) = match unit {
            Unit::Connector(name) => (name, CONNECTOR_TASK),
            Unit::Task(name, id) => (name, *id as i32),
        };
        allocation.entry(name.clone()).or_default().push(id);
    }
    allocation
}

pub fn from_allocation(allocation: &Allocation) -> BTreeSet<Unit> {
    let mut units = BTreeSet::new();
    for (name, ids) in allocation {
        for &id in ids {
            match u32::try_from(id) {
                Ok(task) => units.insert(Unit::Task(name.clone(), task)),
                Err(_) => units.insert(Unit::Connector(name.clone())),
            };
        }
    }
    units
}

/// What the leader remembers between rounds.
#[derive(Debug, Default)]
pub struct LeaderState {
    /// Every unit assigned in the last round.
    previous: BTreeSet<Unit>,
    /// Units whose worker left, and when they may be given to another.
    held_until: BTreeMap<Unit, Instant>,
}

/// One member's share of a round.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Share {
    pub assigned: BTreeSet<Unit>,
    pub revoked: BTreeSet<Unit>,
}

impl Share {
    pub fn allocations(&self) -> (Allocation, Allocation) {
        (to_allocation(&self.assigned), to_allocation(&self.revoked))
    }
}

/// The units a worker says it runs.
pub fn owned(metadata: &WorkerMetadata) -> BTreeSet<Unit> {
    metadata.allocation.as_ref().map(from_allocation).unwrap_or_default()
}

/// Compute every member's share. Returns the shares by member id and, when units are held back, the
/// delay after which the members should rejoin.
pub fn assign(
    members: &[(String, WorkerMetadata)],
    units: &BTreeSet<Unit>,
    state: &mut LeaderState,
    now: Instant,
    max_delay: Duration,
) -> (BTreeMap<String, Share>, Option<Duration>) {
    let mut members: Vec<(&String, BTreeSet<Unit>)> = members.iter().map(|(id, m)| (id, owned(m))).collect();
    members.sort_by(|a, b| a.0.cmp(b.0));
    let mut shares: BTreeMap<String, Share> = members.iter().map(|(id, _)| ((*id).clone(), Share::default())).collect();
    let mut keep: BTreeMap<&String, BTreeSet<Unit>> = BTreeMap::new();
    let mut running: BTreeSet<Unit> = BTreeSet::new();
    for (id, owned) in &members {
        let share = shares.get_mut(*id).expect("every member has a share");
        let kept = keep.entry(id).or_default();
        for unit in owned {
            // Deleted units (a deleted connector, tasks beyond the new count), and any second copy of one
            // (never expected), are revoked.
            if units.contains(unit) && running.insert(unit.clone()) {
                kept.insert(unit.clone());
            } else {
                share.revoked.insert(unit.clone());
            }
        }
    }

    // Units nobody runs: new ones go out now; a departed worker's wait for their delay.
    let mut delay: Option<Duration> = None;
    let mut assignable = Vec::new();
    let mut still_held = BTreeMap::new();
    for unit in units.difference(&running) {
        let lost = state.previous.contains(unit) || state.held_until.contains_key(unit);
        if lost && !max_delay.is_zero() {
            let until = *state.held_until.get(unit).unwrap_or(&(now + max_delay));
            if until > now {
                still_held.insert(unit.clone(), until);
                let remaining = until - now;
                delay = Some(delay.map_or(remaining, |d: Duration| d.min(remaining)));
                continue;
            }
        }
        assignable.push(unit.clone());
    }
    state.held_until = still_held;

    // Connectors and tasks are balanced each on their own.
    for tasks in [false, true] {
        let count_kind = |set: &BTreeSet<Unit>| set.iter().filter(|u| u.is_task() == tasks).count();
        let new: Vec<&Unit> = assignable.iter().filter(|u| u.is_task() == tasks).collect();
        // Quotas: the total spread as evenly as it goes, the larger quotas to those that run most now.
        let total = keep.values().map(count_kind).sum::<usize>() + new.len();
        let count = members.len().max(1);
        let (base, extra) = (total / count, total % count);
        let mut by_load: Vec<&String> = members.iter().map(|(id, _)| *id).collect();
        by_load.sort_by_key(|id| std::cmp::Reverse(count_kind(&keep[id])));
        let quota: BTreeMap<&String, usize> = by_load.iter().enumerate().map(|(i, id)| (*id, base + usize::from(i < extra))).collect();

        for (id, kept) in keep.iter_mut() {
            while count_kind(kept) > quota[id] {
                let surplus = kept.iter().rev().find(|u| u.is_task() == tasks).cloned().expect("above its quota");
                kept.remove(&surplus);
                shares.get_mut(*id).expect("member").revoked.insert(surplus);
            }
        }
        for unit in new {
            let target = keep
                .iter()
                .filter(|(id, kept)| count_kind(kept) < quota[*id])
                .min_by_key(|(id, kept)| (count_kind(kept), *id))
                .map(|(id, _)| (*id).clone());
            let Some(target) = target else { break };
            keep.get_mut(&target).expect("member").insert(unit.clone());
            shares.get_mut(&target).expect("member").assigned.insert(unit.clone());
        }
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

    fn set(items: &[&str]) -> BTreeSet<Unit> {
        items.iter().map(|s| Unit::Connector(s.to_string())).collect()
    }

    fn names(n: usize) -> BTreeSet<Unit> {
        (0..n).map(|i| Unit::Connector(format!("c{i}"))).collect()
    }

    fn with_tasks(units: &[Unit]) -> (String, WorkerMetadata) {
        (String::new(), WorkerMetadata { url: String::new(), config_offset: 0, allocation: Some(to_allocation(units)) })
    }

    #[test]
    fn one_connectors_tasks_spread_over_the_workers() {
        let mut state = LeaderState::default();
        let all = units([(&"sink".to_string(), 3)]);
        let members = [member("a", &[]), member("b", &[]), member("c", &[])];
        let (shares, _) = assign(&members, &all, &mut state, Instant::now(), Duration::ZERO);
        for share in shares.values() {
            assert_eq!(share.assigned.iter().filter(|u| u.is_task()).count(), 1, "{shares:?}");
        }
        assert_eq!(shares.values().filter(|s| s.assigned.contains(&Unit::Connector("sink".into()))).count(), 1);
    }

    #[test]
    fn connectors_and_tasks_are_balanced_each_on_their_own() {
        let mut state = LeaderState::default();
        let all = units([(&"x".to_string(), 2), (&"y".to_string(), 2)]);
        // a runs both instances and all four tasks; b joins.
        let mut a = with_tasks(&all.iter().cloned().collect::<Vec<_>>());
        a.0 = "a".into();
        let (shares, _) = assign(&[a, member("b", &[])], &all, &mut state, Instant::now(), Duration::ZERO);
        let revoked = &shares["a"].revoked;
        assert_eq!(revoked.iter().filter(|u| u.is_task()).count(), 2, "{revoked:?}");
        assert_eq!(revoked.iter().filter(|u| !u.is_task()).count(), 1, "{revoked:?}");
    }

    #[test]
    fn fewer_tasks_revoke_the_ones_gone() {
        let mut state = LeaderState::default();
        let mut a = with_tasks(&[Unit::Connector("x".into()), Unit::Task("x".into(), 0), Unit::Task("x".into(), 1)]);
        a.0 = "a".into();
        let (shares, _) = assign(&[a], &units([(&"x".to_string(), 1)]), &mut state, Instant::now(), Duration::ZERO);
        assert_eq!(shares["a"].revoked, BTreeSet::from([Unit::Task("x".into(), 1)]));
    }

    #[test]
    fn units_round_trip_through_the_protocols_allocation() {
        let all = units([(&"x".to_string(), 2), (&"y".to_string(), 0)]);
        let allocation = to_allocation(&all);
        assert_eq!(allocation["x"], vec![-1, 0, 1]);
        assert_eq!(allocation["y"], vec![-1]);
        assert_eq!(from_allocation(&allocation), all);
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
        let a: Vec<&str> =
            ["c0", "c1", "c2"].into_iter().filter(|c| !shares["a"].revoked.contains(&Unit::Connector(c.to_string()))).collect();
        let b: Vec<&str> =
            ["c3", "c4", "c5"].into_iter().filter(|c| !shares["b"].revoked.contains(&Unit::Connector(c.to_string()))).collect();
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
