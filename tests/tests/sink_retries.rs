//! A sink's `put` that fails with a retriable error (issue #12): the batch is redelivered after the delay
//! the task asked for, the pause the failing `put` requested is kept, and a target that stays down
//! longer than `max.poll.interval.ms` does not throw the consumer out of its group.

use connect_e2e::*;
use serde_json::json;
use std::time::Duration;

fn values(range: std::ops::Range<usize>) -> Vec<TestRecord> {
    range.map(|i| (None, Some(format!("value-{i:05}").into_bytes()), vec![])).collect()
}

/// A `put` that asks for a delay *and* pauses its partitions (as an HTTP sink does on a 429) before failing
/// retriably: the batch is written after the retries, and the partitions stay paused, so records produced
/// afterwards are not delivered. Before the fix the retry loop took every request to read the delay and
/// dropped the pause, and the later records were written.
#[test]
fn a_pause_asked_for_by_a_failing_put_is_kept() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("e2e-pause-on-retry");
    produce(&topic, &values(0..50));
    let output = dir.path().join("out.txt");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "pause-on-retry",
        json!({"connector.class": "RejectingSink", "topics": topic, "file": output,
               "retriable.failures.ms": 1500, "retry.timeout.ms": 300, "pause.on.retry": true}),
    );
    let worker = setup.start();
    wait_for("the first batch written after its retries", Duration::from_secs(60), || (line_count(&output) > 0).then_some(()));
    // Let whatever was fetched before the pause be written, then check nothing more comes.
    let mut written = line_count(&output);
    wait_for("the count to settle", Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_secs(2));
        let now = line_count(&output);
        let settled = now == written;
        written = now;
        settled.then_some(())
    });
    produce(&topic, &values(50..100));
    std::thread::sleep(Duration::from_secs(5));
    let after = line_count(&output);
    let (_, metrics) = worker.get("/connectors/pause-on-retry/metrics");
    assert!(metrics["tasks"][0]["total-retries"].as_u64().unwrap_or(0) >= 1, "the put was retried: {metrics}");
    assert_eq!(after, written, "records were delivered from partitions the task paused ({written} before, {after} after)");
    assert!(written <= 50);
}

/// A target down for 15 s while `max.poll.interval.ms` is 7 s: the runtime keeps polling (with the
/// partitions paused) while it waits to redeliver, so the consumer keeps its group membership, and every
/// record is written exactly once. Without that, librdkafka leaves the group after 7 s, the commit after
/// the successful put is refused, and the batch is delivered again.
#[test]
fn a_long_outage_does_not_drop_the_consumer_from_its_group() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("e2e-long-retry");
    produce(&topic, &values(0..200));
    let output = dir.path().join("out.txt");
    let mut setup = WorkerSetup::new(dir.path(), &[("consumer.max.poll.interval.ms", "7000")]);
    setup.connector(
        "long-retry",
        json!({"connector.class": "RejectingSink", "topics": topic, "file": output,
               "retriable.failures.ms": 15000, "retry.timeout.ms": 1000}),
    );
    let worker = setup.start();
    wait_for_or_explain(
        "all 200 records after the outage",
        Duration::from_secs(90),
        || (line_count(&output) >= 200).then_some(()),
        || format!("{} lines; log:\n{}", line_count(&output), tail(&worker.log_text(), 30)),
    );
    // Give a rejoin and a redelivery time to show up.
    std::thread::sleep(Duration::from_secs(10));
    let lines = read_lines(&output);
    let mut distinct = lines.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 200, "every record written");
    assert_eq!(lines.len(), 200, "no record written twice (a consumer dropped from its group redelivers)");
    let log = worker.log_text();
    assert!(!log.contains("max.poll.interval"), "the consumer left its group:\n{}", tail(&log, 30));
    let (_, status) = worker.get("/connectors/long-retry/status");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
}
