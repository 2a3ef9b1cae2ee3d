//! The cluster as one worker sees it: the config and status topics, its place in the group (leader or
//! not, the leader's URL), and the loop that keeps its membership and runs what the leader assigned.
//!
//! Invariant: a connector instance or task runs on this worker only between the assignment that gave it
//! and the revocation, deletion or session loss that took it away; each of those stops it before this
//! worker rejoins, so the leader never hands it to another worker while it still runs here.

use connect_core::Config;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::assignor::{assign, from_allocation, to_allocation, units, LeaderState, Unit};
use super::config_log::{ConfigLog, ConfigState};
use super::kafka_log::KafkaLog;
use super::membership::{GroupError, Member};
use super::protocol::{Allocation, Assignment, WorkerMetadata, CONFIG_MISMATCH, NO_ERROR};
use super::status_log::{StatusLog, StatusRecord};
use super::wire::WireError;
use crate::control::{Cluster, Herder, HerderError, LocalShare};
use crate::runtime::status::Status;
use crate::store::connectors::TargetState;

/// This worker's place in the group, as of the last completed rebalance.
#[derive(Debug, Clone, Default)]
pub struct Role {
    pub generation: i32,
    pub is_leader: bool,
    /// The leader's REST URL (`http://host:port`), empty while unknown.
    pub leader_url: String,
    /// `false` between losing the group (a rebalance under way, a session lost) and the next assignment.
    pub in_group: bool,
}

pub struct ClusterState {
    pub config: ConfigLog,
    pub status: StatusLog,
    /// The offsets topic (its records go to the worker's offset store as they are read).
    pub offsets: Arc<KafkaLog>,
    pub role: RwLock<Role>,
    /// `host:port`: the worker id written in status records.
    pub worker_id: String,
    /// `http://host:port`: the URL other workers forward REST requests to.
    pub url: String,
}

impl ClusterState {
    pub fn role(&self) -> Role {
        self.role.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_role(&self, role: Role) {
        *self.role.write().unwrap_or_else(|p| p.into_inner()) = role;
    }

    fn leave_group(&self) {
        self.role.write().unwrap_or_else(|p| p.into_inner()).in_group = false;
    }

    /// The `host:port` of the worker that last wrote this connector's status.
    pub fn owner_of(&self, connector: &str) -> Option<String> {
        self.status.read(|s| s.connectors.get(connector).map(|r| r.worker_id.clone()))
    }

    /// The `host:port` of the worker that last wrote this task's status.
    pub fn owner_of_task(&self, connector: &str, task: u32) -> Option<String> {
        self.status.read(|s| s.tasks.get(connector).and_then(|t| t.get(&task)).map(|r| r.worker_id.clone()))
    }
}

fn log_error(e: impl std::fmt::Display) -> HerderError {
    HerderError::Internal(format!("cannot write the config topic: {e}"))
}

#[async_trait::async_trait]
impl Cluster for ClusterState {
    fn connectors(&self) -> BTreeMap<String, (Config, TargetState)> {
        let state = self.config.state();
        state.connectors.iter().map(|(name, config)| (name.clone(), (config.clone(), state.target(name)))).collect()
    }

    fn connector(&self, name: &str) -> Option<(Config, TargetState)> {
        let state = self.config.state();
        state.connectors.get(name).map(|config| (config.clone(), state.target(name)))
    }

    fn task_configs(&self, name: &str) -> Vec<Config> {
        self.config.state().tasks.get(name).cloned().unwrap_or_default()
    }

    fn remote_status(&self, name: &str) -> Option<(Status, Vec<(u32, Status)>)> {
        let tasks = self.config.state().tasks.get(name).map(Vec::len).unwrap_or(0) as u32;
        self.status.read(|s| {
            let connector = s.connectors.get(name)?.to_status();
            let recorded = s.tasks.get(name);
            let tasks = (0..tasks)
                .map(|id| {
                    let status = recorded.and_then(|t| t.get(&id)).map_or_else(|| Status::unassigned(""), StatusRecord::to_status);
                    (id, status)
                })
                .collect();
            Some((connector, tasks))
        })
    }

    async fn put_connector(&self, name: &str, config: &Config, target: Option<TargetState>) -> Result<(), HerderError> {
        self.require_leader()?;
        self.config.put_connector(name, config, target).await.map_err(log_error)
    }

    async fn delete_connector(&self, name: &str) -> Result<(), HerderError> {
        self.require_leader()?;
        self.config.delete_connector(name).await.map_err(log_error)
    }

    async fn put_target(&self, name: &str, target: TargetState) -> Result<(), HerderError> {
        self.require_leader()?;
        self.config.put_target(name, target).await.map_err(log_error)
    }

    async fn request_restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<(), HerderError> {
        self.require_leader()?;
        self.config.request_restart(name, include_tasks, only_failed).await.map_err(log_error)
    }
}

impl ClusterState {
    /// Config writes happen on the leader (REST forwards them there); during a rebalance there is none.
    fn require_leader(&self) -> Result<(), HerderError> {
        let role = self.role();
        if role.in_group && role.is_leader {
            Ok(())
        } else {
            Err(HerderError::Conflict("Cannot complete request because of a conflicting operation (e.g. worker rebalance)".into()))
        }
    }
}

/// How the membership loop behaves.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub max_delay: Duration,
    /// `worker.sync.timeout.ms`: how long to wait for the config topic to be read far enough.
    pub sync_timeout: Duration,
}

/// Keep this worker in the group until `stop`; run what it is assigned. Returns after leaving the group,
/// with every local connector stopped.
pub async fn run_member(
    cluster: Arc<ClusterState>,
    herder: Arc<Herder>,
    mut member: Member,
    settings: LoopSettings,
    stop: CancellationToken,
) {
    let mut local = Local { owned: BTreeSet::new(), restarts_seen: BTreeMap::new(), failed: BTreeMap::new() };
    let mut leader_state = LeaderState::default();
    let mut backoff = Duration::from_millis(100);
    // Until when this worker may assume the coordinator still counts it as a member (its last answered
    // heartbeat or sync, plus the session timeout).
    let mut session_valid_until = Instant::now() + settings.session_timeout;
    loop {
        if stop.is_cancelled() {
            break;
        }
        let round = tokio::select! {
            _ = stop.cancelled() => break,
            r = rebalance(&cluster, &mut member, &mut leader_state, &local, &settings) => r,
        };
        let (assignment, units_used) = match round {
            Ok(a) => a,
            Err(e) => {
                handle_group_error(&mut member, &e);
                let session_lost =
                    matches!(e, GroupError::UnknownMember | GroupError::IllegalGeneration) || Instant::now() >= session_valid_until;
                if session_lost && !local.owned.is_empty() {
                    // The group may have given our connectors to others: stop them before anything else.
                    tracing::warn!(error = %e, "the worker group session is lost; stopping local connectors before rejoining");
                    local.stop_all(&herder).await;
                }
                if !matches!(e, GroupError::Rebalance) {
                    tracing::warn!(error = %e, "joining the worker group failed; retrying");
                }
                // A refused login or TLS handshake will not pass by itself: `/health` says so until it does.
                // (A TLS failure is one rustls reports, as InvalidData; a reset or closed connection is an outage.)
                let refused = match &e {
                    GroupError::Wire(WireError::Authentication { .. }) => true,
                    GroupError::Wire(WireError::Tls { source, .. }) => source.kind() == std::io::ErrorKind::InvalidData,
                    _ => false,
                };
                if refused {
                    herder.context().health.set_group_problem(Some(format!("cannot join the worker group: {e}")));
                }
                // A short pause even for "rebalance in progress", so an early sync never becomes a tight loop.
                let pause = if matches!(e, GroupError::Rebalance) { Duration::from_millis(100) } else { backoff };
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
                if !matches!(e, GroupError::Rebalance) {
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        herder.context().health.set_group_problem(None);
        session_valid_until = Instant::now() + settings.session_timeout;
        // Heartbeats from now on, whatever this loop is busy with.
        let (beats_tx, mut beats) = tokio::sync::mpsc::channel(1);
        let heartbeats = CancellationToken::new();
        tokio::spawn(send_heartbeats(member.heartbeater(), settings.clone(), beats_tx, heartbeats.clone()));
        let _stop_heartbeats = heartbeats.drop_guard();
        if assignment.error == CONFIG_MISMATCH {
            // The leader read further than we have: catch up, then join again.
            let _ = cluster.config.read_to_end(settings.sync_timeout).await;
            continue;
        }
        // Read the config topic as far as the leader had when it assigned, so an assigned connector is
        // never taken for a deleted one.
        if !cluster.config.wait_for_offset(assignment.config_offset, settings.sync_timeout).await {
            tracing::warn!(
                offset = assignment.config_offset,
                "the config topic was not read as far as the leader's within worker.sync.timeout.ms; rejoining"
            );
            continue;
        }
        let leader = assignment.leader == member.member_id;
        cluster.set_role(Role {
            generation: member.generation,
            is_leader: leader,
            leader_url: assignment.leader_url.clone(),
            in_group: true,
        });
        // What was revoked stops first.
        let revoked = from_allocation(&assignment.revoked);
        let assigned = from_allocation(&assignment.assigned);
        if !revoked.is_empty() {
            local.owned.retain(|unit| !revoked.contains(unit));
            local.reconcile(&cluster, &herder, &cluster.config.state()).await;
        }
        if !assignment.assigned.is_empty() {
            // Sources that come here resume from the latest offsets their last worker stored.
            if let Err(e) = cluster.offsets.read_to_end(Duration::from_secs(30)).await {
                tracing::warn!(error = %e, "the offsets topic was not read to its end before starting assigned connectors");
            }
        }
        local.owned.extend(assigned.iter().cloned());
        tracing::info!(
            generation = member.generation,
            leader,
            assigned = ?assigned,
            revoked = ?revoked,
            running = local.owned.len(),
            "worker group assignment"
        );
        let config = cluster.config.state();
        local.reconcile(&cluster, &herder, &config).await;
        // The leader rebalances when the connectors or their task counts differ from those it assigned (also
        // when one was created while it was assigning).
        let mut units_assigned = units_used;
        // Revoked work moves in the next round; held-back work after its delay.
        let rejoin_at = if !revoked.is_empty() {
            Some(Instant::now())
        } else if assignment.delay_ms > 0 {
            Some(Instant::now() + Duration::from_millis(assignment.delay_ms as u64))
        } else {
            None
        };
        let changed_meanwhile = leader && config_units(&config) != units_assigned;
        let rejoin_at = if changed_meanwhile { Some(Instant::now()) } else { rejoin_at };
        let next = steady(&cluster, &herder, &mut local, &mut units_assigned, leader, rejoin_at, &mut beats, &stop).await;
        match next {
            Next::Stop => break,
            Next::Rejoin => {}
            Next::SessionLost => {
                member.reset();
                member.drop_coordinator();
            }
        }
    }
    cluster.leave_group();
    // Stop the tasks before leaving, so no other worker starts them while they still run here.
    herder.shutdown().await;
    member.leave().await;
}

/// Every connector instance and task the config topic holds.
fn config_units(config: &ConfigState) -> BTreeSet<Unit> {
    units(config.connectors.keys().map(|name| (name, config.tasks.get(name).map_or(0, Vec::len))))
}

/// The connector instances and tasks this worker runs and what it has done for them.
struct Local {
    owned: BTreeSet<Unit>,
    /// Per connector, the restart request already carried out (or there when the connector came here).
    restarts_seen: BTreeMap<String, i64>,
    /// Connectors assigned here that cannot run on this worker (an unknown class, an invalid config): why,
    /// and for which of its units the FAILED statuses were written.
    failed: BTreeMap<String, (String, LocalShare)>,
}

impl Local {
    /// Stop every connector here (the group session is lost).
    async fn stop_all(&mut self, herder: &Herder) {
        self.owned.clear();
        for name in herder.local_names() {
            herder.remove_local(&name).await;
        }
    }

    fn allocation(&self) -> Allocation {
        to_allocation(&self.owned)
    }

    /// What of `name` this worker owns, with the config topic's task configs (a task beyond the current
    /// count is not run; the leader revokes it in the next round).
    fn share(&self, name: &str, config: &ConfigState) -> LocalShare {
        let task_configs = config.tasks.get(name).map(Vec::as_slice).unwrap_or_default();
        let tasks = self
            .owned
            .iter()
            .filter_map(|unit| match unit {
                Unit::Task(n, id) if n == name => task_configs.get(*id as usize).map(|c| (*id, c.clone())),
                _ => None,
            })
            .collect();
        LocalShare {
            instance: self.owned.contains(&Unit::Connector(name.to_string())),
            tasks,
            connector_config: config.applied.get(name).cloned(),
        }
    }

    /// Make what runs here match what is owned and what the config topic says.
    async fn reconcile(&mut self, cluster: &ClusterState, herder: &Herder, config: &ConfigState) {
        self.owned.retain(|unit| config.connectors.contains_key(unit.connector()));
        let names: BTreeSet<String> = self.owned.iter().map(|unit| unit.connector().to_string()).collect();
        for name in herder.local_names() {
            if !names.contains(&name) {
                herder.remove_local(&name).await;
                self.restarts_seen.remove(&name);
            }
        }
        self.failed.retain(|name, _| names.contains(name));
        for name in names {
            let connector_config = config.connectors[&name].clone();
            let target = config.target(&name);
            let share = self.share(&name, config);
            let local =
                herder.with_local(&name, |v| v.config == connector_config && v.target == target && v.share.as_ref() == Some(&share));
            let fresh = local.is_none();
            let unchanged = local == Some(true);
            let request = config.restarts.get(&name).copied();
            if unchanged && request.is_none_or(|r| self.restarts_seen.get(&name).is_some_and(|&seen| r.seq <= seen)) {
                continue;
            }
            let attempted = share.clone();
            match herder.apply_local(&name, connector_config, target, share).await {
                Ok(()) => {
                    self.failed.remove(&name);
                }
                Err(e) => {
                    // Nothing of it runs here, not even an older config's parts.
                    herder.remove_local(&name).await;
                    let trace = e.to_string();
                    if self.failed.get(&name).is_none_or(|(t, share)| *t != trace || *share != attempted) {
                        tracing::error!(connector = %name, error = %trace, "an assigned connector cannot run on this worker");
                        let record = StatusRecord {
                            state: crate::runtime::status::State::Failed,
                            trace: Some(trace.clone()),
                            worker_id: cluster.worker_id.clone(),
                            generation: cluster.role().generation,
                        };
                        let instance = attempted.instance.then_some(None);
                        for unit in instance.into_iter().chain(attempted.tasks.keys().map(|id| Some(*id))) {
                            if let Err(e) = cluster.status.put(&name, unit, &record).await {
                                tracing::warn!(connector = %name, error = %e, "cannot write a status");
                            }
                        }
                        self.failed.insert(name.clone(), (trace, attempted));
                    }
                    continue;
                }
            }
            if fresh {
                // A restart requested before the connector came here is not for this run.
                self.restarts_seen.insert(name.clone(), request.map_or(-1, |r| r.seq));
            } else if let Some(r) = request.filter(|r| self.restarts_seen.get(&name).is_none_or(|&seen| r.seq > seen)) {
                self.restarts_seen.insert(name.clone(), r.seq);
                if let Err(e) = herder.restart_local(&name, r.include_tasks, r.only_failed).await {
                    tracing::warn!(connector = %name, error = %e, "restart request failed");
                }
            }
        }
    }
}

/// One rebalance: join, assign if leader, sync. Returns this worker's assignment.
async fn rebalance(
    cluster: &ClusterState,
    member: &mut Member,
    leader_state: &mut LeaderState,
    local: &Local,
    settings: &LoopSettings,
) -> Result<(Assignment, BTreeSet<Unit>), GroupError> {
    cluster.leave_group();
    let _ = cluster.config.read_to_end(settings.sync_timeout).await;
    let metadata =
        WorkerMetadata { url: cluster.url.clone(), config_offset: cluster.config.state().offset, allocation: Some(local.allocation()) };
    let joined = member.join(&metadata).await?;
    let (assignments, units_used) = match &joined.members {
        None => (Vec::new(), BTreeSet::new()),
        Some(members) => {
            // The leader reads the config topic to its end before deciding (Kafka Connect's CONFIG_MISMATCH rule).
            let _ = cluster.config.read_to_end(settings.sync_timeout).await;
            let config = cluster.config.state();
            let (assignments, units) =
                leader_assignments(members, &config, &joined.member_id, &cluster.url, leader_state, Instant::now(), settings.max_delay);
            (assignments.into_iter().map(|(id, a)| (id, a.encode())).collect(), units)
        }
    };
    Ok((member.sync(assignments).await?, units_used))
}

/// The leader's answer to a join: every member's assignment, and the units they cover. When a member has
/// read the config topic further than the leader could, every member gets CONFIG_MISMATCH and nothing is
/// assigned (Kafka Connect's rule): all read on and join again, and no unit is taken as running on a member
/// that never got it.
fn leader_assignments(
    members: &[(String, WorkerMetadata)],
    config: &ConfigState,
    leader_id: &str,
    leader_url: &str,
    leader_state: &mut LeaderState,
    now: Instant,
    max_delay: Duration,
) -> (Vec<(String, Assignment)>, BTreeSet<Unit>) {
    let base = Assignment { leader: leader_id.to_string(), leader_url: leader_url.to_string(), ..Default::default() };
    let furthest = members.iter().map(|(_, m)| m.config_offset).max().unwrap_or(config.offset);
    if furthest > config.offset {
        let mismatch = Assignment { error: CONFIG_MISMATCH, config_offset: furthest, ..base };
        return (members.iter().map(|(id, _)| (id.clone(), mismatch.clone())).collect(), BTreeSet::new());
    }
    let all = config_units(config);
    let (shares, delay) = assign(members, &all, leader_state, now, max_delay);
    let assignments = members
        .iter()
        .map(|(id, _)| {
            let (assigned, revoked) = shares.get(id).cloned().unwrap_or_default().allocations();
            let assignment = Assignment {
                error: NO_ERROR,
                config_offset: config.offset,
                assigned,
                revoked,
                delay_ms: delay.map_or(0, |d| d.as_millis().min(i32::MAX as u128) as i32),
                ..base.clone()
            };
            (id.clone(), assignment)
        })
        .collect();
    (assignments, all)
}

fn handle_group_error(member: &mut Member, e: &GroupError) {
    if e.needs_new_coordinator() {
        member.drop_coordinator();
    }
    if matches!(e, GroupError::UnknownMember) {
        member.reset();
    }
}

/// What the member loop does after [`steady`].
enum Next {
    Stop,
    Rejoin,
    /// Every local connector was stopped; join as a new member.
    SessionLost,
}

/// What the heartbeat task tells the member loop.
enum Beat {
    Rebalance,
    Lost(String),
}

/// Heartbeats every `heartbeat.interval.ms` on a connection of their own until cancelled; reports a
/// rebalance, or a session that is (or must be taken as) lost: the coordinator no longer knows this member,
/// or no heartbeat was answered for `session.timeout.ms`.
async fn send_heartbeats(
    mut heartbeater: super::membership::Heartbeater,
    settings: LoopSettings,
    report: tokio::sync::mpsc::Sender<Beat>,
    stop: CancellationToken,
) {
    let mut last_answered = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(settings.heartbeat_interval) => {}
        }
        let remaining = settings.session_timeout.saturating_sub(last_answered.elapsed()).max(Duration::from_millis(100));
        let outcome = tokio::select! {
            _ = stop.cancelled() => return,
            r = heartbeater.beat(remaining) => r,
        };
        let beat = match outcome {
            Ok(()) => {
                last_answered = Instant::now();
                continue;
            }
            Err(GroupError::Rebalance) => Beat::Rebalance,
            Err(e @ (GroupError::UnknownMember | GroupError::IllegalGeneration)) => Beat::Lost(e.to_string()),
            Err(e) if last_answered.elapsed() >= settings.session_timeout => {
                Beat::Lost(format!("no heartbeat answered for the session timeout: {e}"))
            }
            Err(e) => {
                tracing::warn!(error = %e, "worker group heartbeat failed; retrying");
                continue;
            }
        };
        let _ = report.send(beat).await;
        return;
    }
}

/// Between rebalances: config changes and what the heartbeats say.
#[allow(clippy::too_many_arguments)]
async fn steady(
    cluster: &ClusterState,
    herder: &Herder,
    local: &mut Local,
    units_assigned: &mut BTreeSet<Unit>,
    leader: bool,
    rejoin_at: Option<Instant>,
    beats: &mut tokio::sync::mpsc::Receiver<Beat>,
    stop: &CancellationToken,
) -> Next {
    // Not marked as seen: a change made while the assignment was applied is reconciled at once.
    let mut configs = cluster.config.subscribe();
    let rejoin = async {
        match rejoin_at {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(rejoin);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Next::Stop,
            _ = &mut rejoin => return Next::Rejoin,
            beat = beats.recv() => match beat {
                Some(Beat::Lost(reason)) => {
                    // The coordinator has (or will have) given our work to others: stop it here first.
                    tracing::warn!(reason = %reason, "lost the worker group session; stopping local connectors before rejoining");
                    cluster.leave_group();
                    local.stop_all(herder).await;
                    return Next::SessionLost;
                }
                Some(Beat::Rebalance) | None => return Next::Rejoin,
            },
            changed = configs.changed() => {
                if changed.is_err() {
                    return Next::Stop;
                }
                let config = configs.borrow_and_update().clone();
                local.reconcile(cluster, herder, &config).await;
                let now = config_units(&config);
                if leader && now != *units_assigned {
                    // A connector was created or deleted, or its task count changed: rebalance so the new
                    // work gets a worker (and what is gone frees one).
                    *units_assigned = now;
                    return Next::Rejoin;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn member(id: &str, config_offset: i64, allocation: Allocation) -> (String, WorkerMetadata) {
        (id.to_string(), WorkerMetadata { url: format!("http://{id}"), config_offset, allocation: Some(allocation) })
    }

    fn config_with(connectors: &[&str], offset: i64) -> ConfigState {
        let mut config = ConfigState::new();
        for name in connectors {
            config.connectors.insert(name.to_string(), Config::new());
        }
        config.offset = offset;
        config
    }

    #[test]
    fn a_member_ahead_of_the_leader_gets_everyone_a_config_mismatch_and_nothing_is_taken_as_assigned() {
        let (now, delay) = (Instant::now(), Duration::from_secs(60));
        let mut state = LeaderState::default();
        let config = config_with(&["c0", "c1", "c2", "c3"], 10);
        let members = [member("a", 10, Allocation::new()), member("b", 12, Allocation::new())];
        let (assignments, units) = leader_assignments(&members, &config, "a", "http://a", &mut state, now, delay);
        assert!(units.is_empty());
        for (_, a) in &assignments {
            assert_eq!((a.error, a.config_offset), (CONFIG_MISMATCH, 12), "{a:?}");
            assert!(a.assigned.is_empty(), "{a:?}");
        }
        // Next round, both caught up: all four go out now, none held back as if b had lost them.
        let config = config_with(&["c0", "c1", "c2", "c3"], 12);
        let members = [member("a", 12, Allocation::new()), member("b", 12, Allocation::new())];
        let (assignments, _) = leader_assignments(&members, &config, "a", "http://a", &mut state, now, delay);
        let assigned: usize = assignments.iter().map(|(_, a)| a.assigned.len()).sum();
        assert_eq!(assigned, 4, "{assignments:?}");
        assert!(assignments.iter().all(|(_, a)| a.error == NO_ERROR && a.delay_ms == 0), "{assignments:?}");
    }
}
