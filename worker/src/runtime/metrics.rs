//! Task and worker metrics. The record path only bumps atomic counters (per batch where it can, per record
//! where it already counted); the control plane samples them every [`SAMPLE_INTERVAL`], and the rates,
//! windowed averages and the status page's sparklines come from those samples at read time.
//!
//! Kafka Connect computes its `*-rate`, `*-avg` and `*-percentage` metrics over a window (two samples of
//! 30 s by default); here the window is the last [`RATE_WINDOW`] of samples plus the counters' values now.
//! Maxima (`*-max`) count since the task started.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the control plane samples every task's counters.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// The window of rates, averages and percentages.
pub const RATE_WINDOW: Duration = Duration::from_secs(30);
/// Samples kept per task: two minutes, for the sparklines.
const HISTORY: usize = 25;

/// Per-task counters, named after Kafka Connect's task metrics.
#[derive(Debug, Default)]
pub struct TaskMetrics {
    pub records_read: AtomicU64,
    pub records_written: AtomicU64,
    pub total_record_errors: AtomicU64,
    pub total_record_failures: AtomicU64,
    pub total_records_skipped: AtomicU64,
    pub total_retries: AtomicU64,
    pub total_errors_logged: AtomicU64,
    pub deadletterqueue_produce_requests: AtomicU64,
    pub deadletterqueue_produce_failures: AtomicU64,
    pub last_error_timestamp: AtomicU64,
    /// Batches a source's `poll` returned or a sink's `put` got, their records, the largest.
    batches: AtomicU64,
    batch_records: AtomicU64,
    batch_size_max: AtomicU64,
    /// Time in `poll` (source) or `put` (sink), in microseconds: the sum and the longest.
    batch_time_us: AtomicU64,
    batch_time_max_us: AtomicU64,
    /// Offset commits that completed (a flush with nothing new counts, as in Kafka Connect) or failed.
    offset_commits: AtomicU64,
    offset_commit_failures: AtomicU64,
    offset_commit_time_us: AtomicU64,
    offset_commit_time_max_us: AtomicU64,
    /// A sink's lag per assigned partition, as its consumer last reported it.
    partition_lag: Mutex<Vec<PartitionLag>>,
    history: Mutex<VecDeque<Sample>>,
}

/// How an offset commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    Completed,
    Failed,
}

/// Records between a sink consumer's position in a partition and the partition's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub lag: i64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at_ms: u64,
    read: u64,
    written: u64,
    batches: u64,
    batch_records: u64,
    batch_time_us: u64,
    commits: u64,
    commit_failures: u64,
    commit_time_us: u64,
}

/// Records per second between two samples (one sparkline point).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatePoint {
    pub at_ms: u64,
    pub read: f64,
    pub written: f64,
}

/// A snapshot of [`TaskMetrics`] for REST and Prometheus. Windowed averages are `None` (JSON `null`) when
/// nothing happened in the window, where Kafka Connect reports NaN; percentages are fractions (0.0–1.0, 0.0 for
/// an empty window) and rates 0.0, as Kafka's `Frequencies` and `Rate` give them.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct TaskMetricsSnapshot {
    pub records_read: u64,
    pub records_written: u64,
    pub total_record_errors: u64,
    pub total_record_failures: u64,
    pub total_records_skipped: u64,
    pub total_retries: u64,
    pub total_errors_logged: u64,
    pub deadletterqueue_produce_requests: u64,
    pub deadletterqueue_produce_failures: u64,
    pub last_error_timestamp: u64,
    pub records_read_rate: f64,
    pub records_written_rate: f64,
    pub batch_size_avg: Option<f64>,
    pub batch_size_max: u64,
    /// `poll-batch-*-time-ms` for a source, `put-batch-*-time-ms` for a sink.
    pub batch_avg_time_ms: Option<f64>,
    pub batch_max_time_ms: f64,
    pub offset_commit_completion_total: u64,
    pub offset_commit_failure_total: u64,
    pub offset_commit_success_percentage: f64,
    pub offset_commit_failure_percentage: f64,
    pub offset_commit_avg_time_ms: Option<f64>,
    pub offset_commit_max_time_ms: f64,
    /// Empty for a source.
    pub partition_lag: Vec<PartitionLag>,
    /// Records per second over the last two minutes, oldest first.
    pub rate_history: Vec<RatePoint>,
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// `part / whole`, or `None` when nothing happened.
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl TaskMetrics {
    /// Counters at zero, sampled now: a task's first rate covers its first seconds too.
    pub fn new() -> Self {
        let metrics = Self::default();
        metrics.sample();
        metrics
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// One batch: a source's `poll` that returned `records`, or a sink's `put` of them, and how long it took.
    pub fn record_batch(&self, records: usize, took: Duration) {
        Self::add(&self.batches, 1);
        Self::add(&self.batch_records, records as u64);
        self.batch_size_max.fetch_max(records as u64, Ordering::Relaxed);
        Self::add(&self.batch_time_us, micros(took));
        self.batch_time_max_us.fetch_max(micros(took), Ordering::Relaxed);
    }

    /// One offset commit and how long it took.
    pub fn record_commit(&self, outcome: CommitOutcome, took: Duration) {
        match outcome {
            CommitOutcome::Completed => Self::add(&self.offset_commits, 1),
            CommitOutcome::Failed => Self::add(&self.offset_commit_failures, 1),
        }
        Self::add(&self.offset_commit_time_us, micros(took));
        self.offset_commit_time_max_us.fetch_max(micros(took), Ordering::Relaxed);
    }

    pub fn set_partition_lag(&self, lag: Vec<PartitionLag>) {
        *self.partition_lag.lock().unwrap_or_else(|p| p.into_inner()) = lag;
    }

    fn current(&self, at_ms: u64) -> Sample {
        Sample {
            at_ms,
            read: get(&self.records_read),
            written: get(&self.records_written),
            batches: get(&self.batches),
            batch_records: get(&self.batch_records),
            batch_time_us: get(&self.batch_time_us),
            commits: get(&self.offset_commits),
            commit_failures: get(&self.offset_commit_failures),
            commit_time_us: get(&self.offset_commit_time_us),
        }
    }

    /// Keep the counters' values now (called every [`SAMPLE_INTERVAL`]).
    pub fn sample(&self) {
        self.sample_at(now_ms());
    }

    fn sample_at(&self, at_ms: u64) {
        let sample = self.current(at_ms);
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(sample);
    }

    pub fn snapshot(&self) -> TaskMetricsSnapshot {
        self.snapshot_at(now_ms())
    }

    fn snapshot_at(&self, now_ms: u64) -> TaskMetricsSnapshot {
        let (now, base, rate_history) = {
            let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            // Read under the lock: a sample pushed meanwhile would be newer than `now`.
            let now = self.current(now_ms);
            let window_start = now_ms.saturating_sub(RATE_WINDOW.as_millis() as u64);
            // The oldest sample inside the window; with none yet (a task just started), nothing to compare.
            let base = history.iter().find(|s| s.at_ms >= window_start).copied();
            let points = history
                .iter()
                .zip(history.iter().skip(1))
                .map(|(a, b)| {
                    let secs = (b.at_ms.saturating_sub(a.at_ms)).max(1) as f64 / 1000.0;
                    RatePoint {
                        at_ms: b.at_ms,
                        read: b.read.saturating_sub(a.read) as f64 / secs,
                        written: b.written.saturating_sub(a.written) as f64 / secs,
                    }
                })
                .collect();
            (now, base, points)
        };
        // A sample "after" now (the wall clock stepped back) counts as none.
        let base = base.filter(|b| b.at_ms <= now.at_ms).unwrap_or(now);
        let secs = now.at_ms.saturating_sub(base.at_ms) as f64 / 1000.0;
        let rate = |now: u64, then: u64| if secs > 0.0 { now.saturating_sub(then) as f64 / secs } else { 0.0 };
        let batches = now.batches.saturating_sub(base.batches);
        let commits = now.commits.saturating_sub(base.commits);
        let failures = now.commit_failures.saturating_sub(base.commit_failures);
        TaskMetricsSnapshot {
            records_read: now.read,
            records_written: now.written,
            total_record_errors: get(&self.total_record_errors),
            total_record_failures: get(&self.total_record_failures),
            total_records_skipped: get(&self.total_records_skipped),
            total_retries: get(&self.total_retries),
            total_errors_logged: get(&self.total_errors_logged),
            deadletterqueue_produce_requests: get(&self.deadletterqueue_produce_requests),
            deadletterqueue_produce_failures: get(&self.deadletterqueue_produce_failures),
            last_error_timestamp: get(&self.last_error_timestamp),
            records_read_rate: rate(now.read, base.read),
            records_written_rate: rate(now.written, base.written),
            batch_size_avg: ratio(now.batch_records.saturating_sub(base.batch_records), batches),
            batch_size_max: get(&self.batch_size_max),
            batch_avg_time_ms: ratio(now.batch_time_us.saturating_sub(base.batch_time_us), batches).map(|us| us / 1000.0),
            batch_max_time_ms: get(&self.batch_time_max_us) as f64 / 1000.0,
            offset_commit_completion_total: now.commits,
            offset_commit_failure_total: now.commit_failures,
            offset_commit_success_percentage: ratio(commits, commits + failures).unwrap_or(0.0),
            offset_commit_failure_percentage: ratio(failures, commits + failures).unwrap_or(0.0),
            offset_commit_avg_time_ms: ratio(now.commit_time_us.saturating_sub(base.commit_time_us), commits + failures)
                .map(|us| us / 1000.0),
            offset_commit_max_time_ms: get(&self.offset_commit_time_max_us) as f64 / 1000.0,
            partition_lag: self.partition_lag.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            rate_history,
        }
    }
}

/// The worker's start-up counters (Kafka Connect's `connect-worker-metrics`).
#[derive(Debug, Default)]
pub struct StartupMetrics {
    pub connector_attempts: AtomicU64,
    pub connector_successes: AtomicU64,
    pub connector_failures: AtomicU64,
    pub task_attempts: AtomicU64,
    pub task_successes: AtomicU64,
    pub task_failures: AtomicU64,
}

impl StartupMetrics {
    /// One connector start and whether it worked.
    pub fn connector_started(&self, ok: bool) {
        TaskMetrics::add(&self.connector_attempts, 1);
        TaskMetrics::add(if ok { &self.connector_successes } else { &self.connector_failures }, 1);
    }

    /// One task start (its runner built: clients, converters, transforms) and whether it worked.
    pub fn task_started(&self, ok: bool) {
        TaskMetrics::add(&self.task_attempts, 1);
        TaskMetrics::add(if ok { &self.task_successes } else { &self.task_failures }, 1);
    }

    /// (attempts, successes, failures) of connectors, then of tasks.
    pub fn totals(&self) -> [(u64, u64, u64); 2] {
        [
            (get(&self.connector_attempts), get(&self.connector_successes), get(&self.connector_failures)),
            (get(&self.task_attempts), get(&self.task_successes), get(&self.task_failures)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_averages_come_from_the_window_maxima_from_the_start() {
        let m = TaskMetrics::default();
        m.sample_at(0);
        TaskMetrics::add(&m.records_read, 100);
        m.record_batch(100, Duration::from_millis(10));
        m.sample_at(5_000);
        TaskMetrics::add(&m.records_read, 300);
        TaskMetrics::add(&m.records_written, 300);
        m.record_batch(200, Duration::from_millis(2));
        m.record_batch(100, Duration::from_millis(4));
        m.record_commit(CommitOutcome::Completed, Duration::from_millis(6));
        m.record_commit(CommitOutcome::Failed, Duration::from_millis(2));
        m.sample_at(10_000);
        // At 40 s the window (30 s) starts at 10 s: nothing happened since, so no averages, rates 0.
        let quiet = m.snapshot_at(40_000);
        assert_eq!((quiet.records_read_rate, quiet.batch_size_avg, quiet.offset_commit_success_percentage), (0.0, None, 0.0));
        assert_eq!(quiet.batch_size_max, 200);
        assert_eq!(quiet.batch_max_time_ms, 10.0);
        // At 20 s the window reaches back before 0 s: every sample is in it.
        let s = m.snapshot_at(20_000);
        assert_eq!(s.records_read, 400);
        assert_eq!(s.records_read_rate, 400.0 / 20.0);
        assert_eq!(s.records_written_rate, 300.0 / 20.0);
        assert_eq!(s.batch_size_avg, Some(400.0 / 3.0));
        assert_eq!(s.batch_avg_time_ms, Some(16.0 / 3.0));
        assert_eq!((s.offset_commit_completion_total, s.offset_commit_failure_total), (1, 1));
        assert_eq!((s.offset_commit_success_percentage, s.offset_commit_failure_percentage), (0.5, 0.5), "fractions, as Kafka's");
        assert_eq!(s.offset_commit_avg_time_ms, Some(4.0));
        assert_eq!(s.offset_commit_max_time_ms, 6.0);
        assert_eq!(
            s.rate_history,
            vec![RatePoint { at_ms: 5_000, read: 20.0, written: 0.0 }, RatePoint { at_ms: 10_000, read: 60.0, written: 60.0 }]
        );
    }

    #[test]
    fn history_keeps_two_minutes() {
        let m = TaskMetrics::default();
        for i in 0..100 {
            m.sample_at(i * 5_000);
        }
        assert_eq!(m.snapshot_at(500_000).rate_history.len(), HISTORY - 1);
    }

    #[test]
    fn snapshot_serialises_with_kafka_connect_like_names_and_null_for_nothing() {
        let json = serde_json::to_value(TaskMetrics::default().snapshot()).unwrap();
        assert_eq!(json["records-read"], 0);
        assert!(json["batch-size-avg"].is_null(), "{json}");
        assert_eq!(json["partition-lag"], serde_json::json!([]));
    }

    /// A sample taken after a snapshot read its counters (or a wall clock stepped back) never makes a
    /// difference negative.
    #[test]
    fn a_newer_sample_than_now_counts_as_none() {
        let m = TaskMetrics::default();
        m.record_batch(10, Duration::from_millis(1));
        m.sample_at(10_000);
        let s = m.snapshot_at(5_000);
        assert_eq!((s.records_read_rate, s.batch_size_avg), (0.0, None));
    }
}
