//! What a worker tells the cluster about the connector instances and tasks it runs: their statuses
//! (status topic, when they change) and the task configs its instances generated (config topic, with a
//! commit record, when they change), so every worker can answer for every connector and the leader can
//! hand the tasks out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::cluster::ClusterState;
use super::status_log::StatusRecord;
use crate::control::Herder;
use crate::runtime::status::{State, Status};

/// How often local statuses are compared with what was last written.
pub const REPORT_INTERVAL: Duration = Duration::from_millis(500);

#[derive(PartialEq, Clone)]
struct Reported {
    state: State,
    trace: Option<String>,
    generation: i32,
}

fn reported(status: &Status, generation: i32) -> Reported {
    Reported { state: status.state, trace: status.trace.clone(), generation }
}

/// Until `stop`: write what changed, every [`REPORT_INTERVAL`].
pub async fn report(cluster: Arc<ClusterState>, herder: Arc<Herder>, stop: CancellationToken) {
    let mut written: BTreeMap<(String, Option<u32>), Reported> = BTreeMap::new();
    let mut tick = tokio::time::interval(REPORT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let role = cluster.role();
        if !role.in_group {
            continue;
        }
        let config = cluster.config.state();
        let mut local = std::collections::BTreeSet::new();
        for name in herder.local_names() {
            let Some((runs_instance, connector, tasks, generated, generated_from)) = herder.with_local(&name, |v| {
                let tasks = v.tasks.iter().map(|t| (t.id, t.status.get())).collect::<Vec<_>>();
                (v.runs_instance(), v.status.get(), tasks, v.generated.clone(), v.config.clone())
            }) else {
                continue;
            };
            let mut updates = Vec::new();
            if runs_instance {
                // Task configs first, so a reader that sees a task's status also knows the task.
                // A STOPPED connector has no tasks, which is written too (Kafka Connect's empty task set,
                // KIP-875), so other workers stop listing and running its old ones.
                // They are written once the instance runs the topic's latest connector config, when they changed
                // or that config did since they were committed (KAFKA-9228: a change the task configs do not show,
                // such as a converter's, reaches the tasks only through a new commit).
                let committed = config.tasks.get(&name);
                let settled = matches!(connector.state, State::Running | State::Paused | State::Stopped);
                let current = config.connectors.get(&name) == Some(&generated_from);
                let stale = committed.is_none_or(|c| *c != generated) || config.applied.get(&name) != Some(&generated_from);
                if settled && current && stale && !(generated.is_empty() && committed.is_none()) {
                    if let Err(e) = cluster.config.put_task_configs(&name, &generated, &generated_from).await {
                        tracing::warn!(connector = %name, error = %e, "cannot write task configs to the config topic");
                    }
                }
                updates.push((None, connector));
            }
            updates.extend(tasks.into_iter().map(|(id, status)| (Some(id), status)));
            for (task, status) in updates {
                let key = (name.clone(), task);
                local.insert(key.clone());
                let now = reported(&status, role.generation);
                if written.get(&key) == Some(&now) {
                    continue;
                }
                let record = StatusRecord {
                    state: status.state,
                    trace: status.trace.clone(),
                    worker_id: cluster.worker_id.clone(),
                    generation: role.generation,
                };
                match cluster.status.put(&name, task, &record).await {
                    Ok(()) => {
                        written.insert(key, now);
                    }
                    Err(e) => tracing::warn!(connector = %name, error = %e, "cannot write a status to the status topic"),
                }
            }
        }
        // What stopped running here (revoked, stopped, moved) is UNASSIGNED, as Kafka Connect writes when it
        // stops a task or connector, so no worker goes on showing it RUNNING here. It carries the generation it
        // ran in: a newer owner's status wins over it whichever is written first. Forgotten, so it is written
        // again if it comes back.
        let gone: Vec<(String, Option<u32>)> = written.keys().filter(|key| !local.contains(*key)).cloned().collect();
        for key in gone {
            let Some(last) = written.remove(&key) else { continue };
            if last.state == State::Unassigned || !config.connectors.contains_key(&key.0) {
                continue;
            }
            let record =
                StatusRecord { state: State::Unassigned, trace: None, worker_id: cluster.worker_id.clone(), generation: last.generation };
            if let Err(e) = cluster.status.put(&key.0, key.1, &record).await {
                tracing::warn!(connector = %key.0, error = %e, "cannot write a status to the status topic");
            }
        }
    }
}
