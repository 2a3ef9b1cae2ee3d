//! `GET /metrics`: the worker's state in Prometheus (OpenMetrics) text, under the names Strimzi's JMX exporter
//! rules give Kafka Connect's metrics (`kafka_connect_<group>_<metric>`, `-` as `_`, labels `connector` and
//! `task`), so dashboards and alerts built for Kafka Connect work unchanged. Built at scrape time from the
//! control plane's published view: the record path only bumps the atomic counters it already had.

use crate::control::Herder;
use crate::runtime::status::State;
use axum::extract::State as AxumState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    connector: String,
    task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskStatusLabels {
    connector: String,
    task: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectorStatusLabels {
    connector: String,
    status: String,
    #[prometheus(flatten)]
    kind: KindLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    connector_type: String,
}

/// Kafka Connect's status names, lower-case as its `status` metric reports them.
fn status_name(state: State) -> &'static str {
    match state {
        State::Unassigned => "unassigned",
        State::Running => "running",
        State::Paused => "paused",
        State::Stopped => "stopped",
        State::Failed => "failed",
        State::Restarting => "restarting",
    }
}

/// A family of metrics registered under `name`: counters (exposed with the `_total` suffix Prometheus counters
/// carry), integer gauges or float gauges.
fn family<L, M>(registry: &mut Registry, name: &str, help: &str) -> Family<L, M>
where
    Family<L, M>: Default + Clone + prometheus_client::registry::Metric,
{
    let family = Family::<L, M>::default();
    registry.register(name, help, family.clone());
    family
}

fn counters(registry: &mut Registry, name: &str, help: &str) -> Family<TaskLabels, Counter> {
    family(registry, name, help)
}

fn gauges<L>(registry: &mut Registry, name: &str, help: &str) -> Family<L, Gauge>
where
    Family<L, Gauge>: Default + Clone + prometheus_client::registry::Metric,
{
    family(registry, name, help)
}

/// Rates, averages and fractions.
type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    connector: String,
    task: String,
    topic: String,
    partition: String,
}

/// The exposition text of everything the worker runs now.
pub fn render(herder: &Herder) -> String {
    let mut registry = Registry::default();
    // Strimzi: kafka.connect<type=source-task-metrics, connector, task><>source-record-poll-total, ...
    let source_poll = counters(&mut registry, "kafka_connect_source_task_source_record_poll", "Records polled by the source task");
    let source_write = counters(
        &mut registry,
        "kafka_connect_source_task_source_record_write",
        "Records written to Kafka by the source task (after transforms)",
    );
    let sink_read = counters(&mut registry, "kafka_connect_sink_task_sink_record_read", "Records read from Kafka by the sink task");
    let sink_send = counters(&mut registry, "kafka_connect_sink_task_sink_record_send", "Records the sink task put to its target");
    // Strimzi: kafka.connect<type=task-error-metrics, connector, task><>total-record-errors, ...
    let error_gauge = |registry: &mut Registry, metric: &str, help: &str| {
        gauges::<TaskLabels>(registry, &format!("kafka_connect_task_error_{metric}"), help)
    };
    let record_errors = error_gauge(&mut registry, "total_record_errors", "Record processing errors");
    let record_failures = error_gauge(&mut registry, "total_record_failures", "Record processing failures (including retries)");
    let records_skipped = error_gauge(&mut registry, "total_records_skipped", "Records skipped because of errors");
    let retries = error_gauge(&mut registry, "total_retries", "Operations retried");
    let errors_logged = error_gauge(&mut registry, "total_errors_logged", "Errors logged");
    let dlq_requests = error_gauge(&mut registry, "deadletterqueue_produce_requests", "Writes to the dead-letter queue");
    let dlq_failures = error_gauge(&mut registry, "deadletterqueue_produce_failures", "Failed writes to the dead-letter queue");
    let last_error = error_gauge(&mut registry, "last_error_timestamp", "When the last error happened, epoch milliseconds");
    // Strimzi: kafka.connect<type=connector-task-metrics, connector, task><>status: running -> 1.
    let task_status = gauges::<TaskStatusLabels>(&mut registry, "kafka_connect_connector_task_status", "1 for the task's current status");
    let connector_status =
        gauges::<ConnectorStatusLabels>(&mut registry, "kafka_connect_connector_status", "1 for the connector's current status");
    let restarts =
        gauges::<TaskLabels>(&mut registry, "connect_rs_task_restart_count", "Automatic restarts of the task since its last healthy run");
    // Windowed (the last 30 s; see runtime::metrics): Strimzi keeps the JMX names, `-` as `_`.
    let source_poll_rate =
        family::<TaskLabels, FloatGauge>(&mut registry, "kafka_connect_source_task_source_record_poll_rate", "Records polled per second");
    let source_write_rate = family::<TaskLabels, FloatGauge>(
        &mut registry,
        "kafka_connect_source_task_source_record_write_rate",
        "Records written to Kafka per second",
    );
    let sink_read_rate = family::<TaskLabels, FloatGauge>(
        &mut registry,
        "kafka_connect_sink_task_sink_record_read_rate",
        "Records read from Kafka per second",
    );
    let sink_send_rate = family::<TaskLabels, FloatGauge>(
        &mut registry,
        "kafka_connect_sink_task_sink_record_send_rate",
        "Records put to the target per second",
    );
    let batch_size_avg =
        family::<TaskLabels, FloatGauge>(&mut registry, "kafka_connect_connector_task_batch_size_avg", "Average records per batch");
    let batch_size_max =
        family::<TaskLabels, FloatGauge>(&mut registry, "kafka_connect_connector_task_batch_size_max", "Most records in one batch");
    let poll_avg =
        family::<TaskLabels, FloatGauge>(&mut registry, "kafka_connect_source_task_poll_batch_avg_time_ms", "Average time to poll a batch");
    let poll_max =
        family::<TaskLabels, FloatGauge>(&mut registry, "kafka_connect_source_task_poll_batch_max_time_ms", "Longest time to poll a batch");
    let put_avg =
        family::<TaskLabels, FloatGauge>(&mut registry, "kafka_connect_sink_task_put_batch_avg_time_ms", "Average time to put a batch");
    let put_max =
        family::<TaskLabels, FloatGauge>(&mut registry, "kafka_connect_sink_task_put_batch_max_time_ms", "Longest time to put a batch");
    let commit_success = family::<TaskLabels, FloatGauge>(
        &mut registry,
        "kafka_connect_connector_task_offset_commit_success_percentage",
        "Offset commits that succeeded in the window, a fraction (0-1) as Kafka Connect reports it",
    );
    let commit_failure = family::<TaskLabels, FloatGauge>(
        &mut registry,
        "kafka_connect_connector_task_offset_commit_failure_percentage",
        "Offset commits that failed in the window, a fraction (0-1) as Kafka Connect reports it",
    );
    let commit_avg = family::<TaskLabels, FloatGauge>(
        &mut registry,
        "kafka_connect_connector_task_offset_commit_avg_time_ms",
        "Average time of an offset commit",
    );
    let commit_max =
        family::<TaskLabels, FloatGauge>(&mut registry, "kafka_connect_connector_task_offset_commit_max_time_ms", "Longest offset commit");
    let commit_completion = counters(&mut registry, "kafka_connect_sink_task_offset_commit_completion", "Offset commits that completed");
    let lag = gauges::<PartitionLabels>(
        &mut registry,
        "connect_rs_sink_partition_lag",
        "Records between a sink task's position in a partition and the partition's end, as its consumer last reported (every 5 s)",
    );
    // Strimzi: kafka.connect<type=connect-worker-metrics><>connector-count, task-count.
    let connector_count = Gauge::<i64>::default();
    registry.register("kafka_connect_worker_connector_count", "Connectors on this worker", connector_count.clone());
    let task_count = Gauge::<i64>::default();
    registry.register("kafka_connect_worker_task_count", "Tasks on this worker", task_count.clone());

    let names = herder.names();
    let mut tasks_total = 0;
    for name in &names {
        let (Ok(status), Ok(metrics)) = (herder.status(name), herder.metrics(name)) else { continue };
        connector_status
            .get_or_create(&ConnectorStatusLabels {
                connector: name.clone(),
                status: status_name(status.connector.status.state).into(),
                kind: KindLabel { connector_type: status.kind.into() },
            })
            .set(1);
        tasks_total += status.tasks.len() as i64;
        for task in &status.tasks {
            let labels =
                TaskStatusLabels { connector: name.clone(), task: task.id.to_string(), status: status_name(task.status.state).into() };
            task_status.get_or_create(&labels).set(1);
            restarts
                .get_or_create(&TaskLabels { connector: name.clone(), task: task.id.to_string() })
                .set(task.status.restart_count as i64);
        }
        for (id, m) in metrics {
            let labels = TaskLabels { connector: name.clone(), task: id.to_string() };
            let (read, written) = if status.kind == "source" { (&source_poll, &source_write) } else { (&sink_read, &sink_send) };
            read.get_or_create(&labels).inc_by(m.records_read);
            written.get_or_create(&labels).inc_by(m.records_written);
            record_errors.get_or_create(&labels).set(m.total_record_errors as i64);
            record_failures.get_or_create(&labels).set(m.total_record_failures as i64);
            records_skipped.get_or_create(&labels).set(m.total_records_skipped as i64);
            retries.get_or_create(&labels).set(m.total_retries as i64);
            errors_logged.get_or_create(&labels).set(m.total_errors_logged as i64);
            dlq_requests.get_or_create(&labels).set(m.deadletterqueue_produce_requests as i64);
            dlq_failures.get_or_create(&labels).set(m.deadletterqueue_produce_failures as i64);
            last_error.get_or_create(&labels).set(m.last_error_timestamp as i64);
            let (read_rate, write_rate) =
                if status.kind == "source" { (&source_poll_rate, &source_write_rate) } else { (&sink_read_rate, &sink_send_rate) };
            read_rate.get_or_create(&labels).set(m.records_read_rate);
            write_rate.get_or_create(&labels).set(m.records_written_rate);
            batch_size_max.get_or_create(&labels).set(m.batch_size_max as f64);
            // Kafka Connect reports NaN for an empty window; Prometheus takes NaN as a value.
            let or_nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
            batch_size_avg.get_or_create(&labels).set(or_nan(m.batch_size_avg));
            let (batch_avg, batch_max) = if status.kind == "source" { (&poll_avg, &poll_max) } else { (&put_avg, &put_max) };
            batch_avg.get_or_create(&labels).set(or_nan(m.batch_avg_time_ms));
            batch_max.get_or_create(&labels).set(m.batch_max_time_ms);
            commit_success.get_or_create(&labels).set(m.offset_commit_success_percentage);
            commit_failure.get_or_create(&labels).set(m.offset_commit_failure_percentage);
            commit_avg.get_or_create(&labels).set(or_nan(m.offset_commit_avg_time_ms));
            commit_max.get_or_create(&labels).set(m.offset_commit_max_time_ms);
            if status.kind == "sink" {
                commit_completion.get_or_create(&labels).inc_by(m.offset_commit_completion_total);
            }
            for p in &m.partition_lag {
                let labels = PartitionLabels {
                    connector: name.clone(),
                    task: id.to_string(),
                    topic: p.topic.clone(),
                    partition: p.partition.to_string(),
                };
                lag.get_or_create(&labels).set(p.lag);
            }
        }
    }
    // Strimzi: kafka.connect<type=connect-worker-metrics><>connector-startup-attempts-total, ...
    let [connectors, tasks] = herder.context().startup.totals();
    for (what, (attempts, successes, failures)) in [("connector", connectors), ("task", tasks)] {
        let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
            let c = Counter::<u64>::default();
            c.inc_by(value);
            registry.register(format!("kafka_connect_worker_{what}_startup_{name}"), format!("{what} {help}"), c);
        };
        counter(&mut registry, "attempts", "start-ups attempted", attempts);
        counter(&mut registry, "success", "start-ups that succeeded", successes);
        counter(&mut registry, "failure", "start-ups that failed", failures);
        for (name, part) in [("success_percentage", successes), ("failure_percentage", failures)] {
            let g = FloatGauge::default();
            // A fraction (0-1), as Kafka's Frequencies give it; since the worker started.
            g.set(if attempts == 0 { 0.0 } else { part as f64 / attempts as f64 });
            registry.register(format!("kafka_connect_worker_{what}_startup_{name}"), format!("{what} start-ups, a fraction"), g);
        }
    }
    connector_count.set(names.len() as i64);
    task_count.set(tasks_total);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("writing to a String");
    text
}

/// `GET /metrics`.
pub async fn get(AxumState(herder): AxumState<Arc<Herder>>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], render(&herder)).into_response()
}
