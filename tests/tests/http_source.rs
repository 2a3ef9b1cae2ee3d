//! HTTP feed source against a local feed server: the car-park CSV (gzip, ETag, header) through the ParseCsv
//! chain, a JSON API with an offset pointer across a restart, a big gzip JSON-lines file with a SIGKILL
//! halfway, a plain file resumed with a range request, 429 with Retry-After, and lines that are not JSON into
//! the DLQ. Counts are exact: records in = records delivered + records in the DLQ.

use connect_e2e::feed_server::{gzip, write_schedule, write_schedule_plain, Content, FeedServer};
use connect_e2e::*;
use serde_json::json;
use std::time::{Duration, Instant};

const HEADER: &str = "date,time,name,capacity,empty,status,lat,lon,url";

fn car_parks(empty_westgate: u32) -> String {
    format!(
        "{HEADER}\n2020-10-06,14:41,Westgate,116,{empty_westgate},Spaces,53.796291,-1.759143,\"https://maps.google.com/?daddr=53.796291,-1.759143\"\n2020-12-06,09:05,\"Kirkgate, Market\",250,0,Full,53.793802,-1.748971,\"https://maps.google.com/?daddr=53.793802,-1.748971\"\n2020-10-06,14:41,Broken,lots,89,Spaces,53.8,-1.7,\"x\"\n"
    )
}

/// The car-park e2e test's transform chain, with the feed in place of the shell loop.
fn car_park_config(url: &str, topic: &str, dlq: &str) -> serde_json::Value {
    merge_json(
        json!({
            "connector.class": "com.github.castorm.kafka.connect.http.HttpSourceConnector",
            "http.request.url": url,
            "http.timer.interval.millis": 300,
            "http.response.format": "lines",
            "http.response.skip.lines": 1,
            "kafka.topic": topic,
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
        }),
        car_park_chain(dlq),
    )
}

#[test]
fn car_park_csv_gzip_with_etag_emits_each_change_once() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let server = FeedServer::start();
    // A .gz download served as a file (no Content-Encoding): recognised by its bytes.
    server.set("/carparks.csv.gz", Content { body: gzip(car_parks(89).as_bytes()), etag: Some("\"v1\"".into()), ..Default::default() });
    let (topic, dlq) = (unique("e2e-feed-carparks"), unique("e2e-feed-carparks-dlq"));
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("carparks-feed", car_park_config(&server.url("/carparks.csv.gz"), &topic, &dlq));
    let worker = setup.start();
    // read_topic_full finds nothing in a topic that does not exist yet: wait for the records first.
    wait_for("2 records and 1 in the DLQ", Duration::from_secs(60), || (topic_count(&topic) >= 2 && topic_count(&dlq) >= 1).then_some(()));
    let records = read_topic_full(&topic, 2, Duration::from_secs(60));
    let dead = read_topic_full(&dlq, 1, Duration::from_secs(60));
    assert_eq!((records.len(), dead.len()), (2, 1), "3 lines in = 2 delivered + 1 dead-lettered");
    let westgate: serde_json::Value = serde_json::from_slice(records[0].value.as_ref().unwrap()).unwrap();
    assert_eq!(westgate["CAPACITY"], 116);
    assert_eq!(westgate["EMPTY_PLACES"], 89);
    assert_eq!(westgate["TS"], 1_601_991_660_000i64);
    assert_eq!(westgate["LOCATION"], json!({"lat": 53.796291, "lon": -1.759143}));
    assert_eq!(records[0].key.as_deref(), Some(&b"Westgate"[..]));
    assert_eq!(dead[0].header("__connect.errors.stage").as_deref(), Some("TRANSFORMATION"));

    // Unchanged: the feed answers 304 and nothing more is emitted.
    wait_for("three 304 answers", Duration::from_secs(30), || (server.answered("/carparks.csv.gz", 304) >= 3).then_some(()));
    assert_eq!(server.answered("/carparks.csv.gz", 200), 1, "one full download");
    assert!(server.requests().iter().skip(1).all(|r| r.if_none_match.as_deref() == Some("\"v1\"")), "conditional requests");
    assert_eq!((topic_count(&topic), topic_count(&dlq)), (2, 1), "nothing emitted on 304");

    // A new snapshot: its lines once.
    server.set("/carparks.csv.gz", Content { body: gzip(car_parks(12).as_bytes()), etag: Some("\"v2\"".into()), ..Default::default() });
    wait_for("the new snapshot", Duration::from_secs(30), || (topic_count(&topic) >= 4 && topic_count(&dlq) >= 2).then_some(()));
    wait_for("two more 304 answers", Duration::from_secs(30), || (server.answered("/carparks.csv.gz", 304) >= 5).then_some(()));
    assert_eq!((topic_count(&topic), topic_count(&dlq)), (4, 2), "each change emitted once: 6 lines in = 4 + 2");
    let latest = read_topic_full(&topic, 4, Duration::from_secs(30));
    let westgate: serde_json::Value = serde_json::from_slice(latest[2].value.as_ref().unwrap()).unwrap();
    assert_eq!(westgate["EMPTY_PLACES"], 12);
    assert_eq!(worker.get("/connectors/carparks-feed/status").1["tasks"][0]["state"], "RUNNING");
}

#[test]
fn a_json_api_with_an_offset_pointer_emits_only_new_items_after_a_restart() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let server = FeedServer::start();
    let items = |n: u32| {
        let list: Vec<_> =
            (1..=n).map(|i| json!({"id": format!("mvt-{i}"), "updated": format!("2026-12-06T10:0{i}:00Z"), "train": {"id": i}})).collect();
        Content {
            body: serde_json::to_vec(&json!({"items": list, "count": n})).unwrap(),
            content_type: "application/json".into(),
            ..Default::default()
        }
    };
    // No validators: the server sends everything every time; only the offset tells what is new.
    server.set("/movements", items(3));
    let topic = unique("e2e-feed-json");
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "movements-feed",
        json!({
            "connector.class": "HttpSource", "http.request.url": server.url("/movements"), "http.request.params": "since=${offset.timestamp}",
            "http.offset.initial": "timestamp=2026-01-01T00:00:00Z",
            "http.timer.interval.millis": 300, "http.response.list.pointer": "/items",
            "http.response.record.offset.pointer": "key=/id, timestamp=/updated", "kafka.topic": topic,
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
        }),
    );
    let mut worker = setup.start();
    wait_for("3 items", Duration::from_secs(60), || (topic_count(&topic) >= 3).then_some(()));
    wait_for("more polls", Duration::from_secs(30), || (server.answered("/movements", 200) >= 4).then_some(()));
    assert_eq!(topic_count(&topic), 3, "the same items polled again are not emitted again");
    assert_eq!(worker.stop(), Some(0));
    server.set("/movements", items(5));
    let worker = setup.start();
    wait_for("5 items", Duration::from_secs(60), || (topic_count(&topic) >= 5).then_some(()));
    let before = server.answered("/movements", 200);
    wait_for("more polls", Duration::from_secs(30), || (server.answered("/movements", 200) >= before + 3).then_some(()));
    let records = read_topic(&topic, 5, Duration::from_secs(30));
    let keys: Vec<String> = records.iter().map(|r| String::from_utf8(r.2.clone().unwrap()).unwrap()).collect();
    assert_eq!(keys, ["mvt-1", "mvt-2", "mvt-3", "mvt-4", "mvt-5"], "only new items after the restart");
    let value: serde_json::Value = serde_json::from_slice(records[3].3.as_deref().unwrap()).unwrap();
    assert_eq!(value["train"]["id"], 4);
    let queries: Vec<String> = server.requests().iter().filter_map(|r| r.query.clone()).collect();
    assert_eq!(queries[0], "since=2026-01-01T00%3A00%3A00Z", "the initial offset in the first request, URL-encoded");
    assert!(queries.iter().any(|q| q == "since=2026-12-06T10%3A05%3A00Z"), "the last item's timestamp in later requests: {queries:?}");
    assert_eq!(worker.get("/connectors/movements-feed/status").1["tasks"][0]["state"], "RUNNING");
}

#[test]
fn a_429_with_retry_after_is_waited_out_and_bad_lines_go_to_the_dlq() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let server = FeedServer::start();
    let lines = "{\"n\":1}\n{\"n\":2}\nnot json at all\n{\"n\":4}\n";
    server.set("/events.jsonl", Content { body: lines.as_bytes().to_vec(), ..Default::default() });
    server.throttle(1, "2");
    let (topic, dlq) = (unique("e2e-feed-429"), unique("e2e-feed-429-dlq"));
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector(
        "events-feed",
        json!({
            "connector.class": "HttpSource", "http.request.url": server.url("/events.jsonl"), "http.response.format": "jsonl",
            "http.timer.interval.millis": 60000, "kafka.topic": topic,
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
            "errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq, "errors.deadletterqueue.context.headers.enable": true,
            "errors.deadletterqueue.topic.replication.factor": 1,
        }),
    );
    let worker = setup.start();
    wait_for_or_explain("3 records", Duration::from_secs(60), || (topic_count(&topic) >= 3).then_some(()), || tail(&worker.log_text(), 20));
    let dead = read_topic_full(&dlq, 1, Duration::from_secs(30));
    assert_eq!((topic_count(&topic), dead.len()), (3, 1), "4 lines in = 3 delivered + 1 dead-lettered");
    assert_eq!(dead[0].value.as_deref(), Some(&b"not json at all"[..]), "the line as it came");
    assert_eq!(dead[0].header("__connect.errors.stage").as_deref(), Some("TASK_POLL"));
    let message = dead[0].header("__connect.errors.exception.message").unwrap_or_default();
    assert!(message.contains("line 3") && message.contains("not JSON"), "{message}");
    let requests = server.requests();
    assert_eq!(requests[0].status, 429);
    assert_eq!(requests[1].status, 200);
    let waited = requests[1].at - requests[0].at;
    assert!(waited >= Duration::from_secs(2), "Retry-After: 2 was honoured: {waited:?}");
    assert_eq!(worker.get("/connectors/events-feed/status").1["tasks"][0]["state"], "RUNNING");
}

/// A worker with one connector reading the rail schedule (JSON lines) at `url` into `topic`, once an hour.
fn schedule_feed(dir: &std::path::Path, name: &str, url: &str, topic: &str) -> WorkerSetup {
    let mut setup = WorkerSetup::new(dir, &[]);
    setup.connector(
        name,
        json!({
            "connector.class": "HttpSource", "http.request.url": url, "http.response.format": "jsonl",
            "http.timer.interval.millis": 3_600_000, "kafka.topic": topic, "batch.size": 5000,
            "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
        }),
    );
    setup
}

/// The schedule lines (`seq` 0 to `lines` - 1) in `topic`: records, lines missing, duplicates.
fn schedule_in_topic(topic: &str, lines: usize) -> (usize, usize, usize) {
    let total = topic_count(topic) as usize;
    let mut seen = vec![0u8; lines];
    let scanned = scan_topic(topic, total, Duration::from_secs(600), |value| {
        let v: serde_json::Value = serde_json::from_slice(value.expect("a value")).expect("JSON");
        let n = v["seq"].as_u64().expect("seq") as usize;
        seen[n] = seen[n].saturating_add(1);
    });
    assert_eq!(scanned, total);
    let missing = seen.iter().filter(|&&c| c == 0).count();
    let duplicates = seen.iter().map(|&c| (c as usize).saturating_sub(1)).sum();
    (total, missing, duplicates)
}

/// A big gzip JSON-lines file (`CONNECT_TEST_FEED_MB` MB of JSON before compression, default 500): every line
/// arrives, the worker's memory stays flat, and a SIGKILL halfway loses nothing.
#[test]
fn a_big_gzip_json_lines_file_streams_in_flat_memory_and_survives_sigkill() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let megabytes: usize = std::env::var("CONNECT_TEST_FEED_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let path = dir.path().join("schedule.jsonl.gz");
    let lines = write_schedule(&path, megabytes * 1024 * 1024);
    let gz_bytes = std::fs::metadata(&path).unwrap().len();
    eprintln!("http source: {lines} lines, {megabytes} MB of JSON, {} MB gzipped", gz_bytes / 1024 / 1024);
    let server = FeedServer::start();
    server.set("/schedule.jsonl.gz", Content { file: Some(path.clone()), etag: Some("\"day-1\"".into()), ..Default::default() });
    let topic = unique("e2e-feed-big");
    create_topic(&topic);
    let setup = schedule_feed(dir.path(), "schedule-feed", &server.url("/schedule.jsonl.gz"), &topic);
    let mut worker = setup.start();
    let mut peak_kib = 0;
    let at_kill = wait_for("half the file in Kafka", Duration::from_secs(600), || {
        if let Some((rss, _)) = memory_kib(worker.pid()) {
            peak_kib = peak_kib.max(rss);
        }
        let written = worker.get("/connectors/schedule-feed/metrics").1["tasks"][0]["records-written"].as_u64().unwrap_or(0) as usize;
        (written >= lines / 2).then_some(written)
    });
    worker.kill_hard();
    let worker = setup.start();
    let started = Instant::now();
    wait_for_or_explain(
        "every line in Kafka",
        Duration::from_secs(900),
        || {
            if let Some((rss, _)) = memory_kib(worker.pid()) {
                peak_kib = peak_kib.max(rss);
            }
            let status = worker.get("/connectors/schedule-feed/status").1;
            assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
            // The restarted worker passes over what was sent, then reads the rest to the file's end.
            let log = worker.log_text();
            (log.contains("passed over the lines already sent") && log.contains("read the feed to its end")).then_some(())
        },
        || tail(&worker.log_text(), 20),
    );
    // The last batches' acks.
    std::thread::sleep(Duration::from_secs(3));
    eprintln!("http source: the restarted worker finished {:.1} s after its start", started.elapsed().as_secs_f64());
    let (total, missing, duplicates) = schedule_in_topic(&topic, lines);
    eprintln!(
        "http source: killed after {at_kill} of {lines} records; {total} records in Kafka, {missing} missing, {duplicates} duplicates; worker peak RSS {} MiB",
        peak_kib / 1024
    );
    assert_eq!(missing, 0, "no line lost");
    assert!(peak_kib < 200 * 1024, "peak RSS {} MiB: the body must stream, not be held", peak_kib / 1024);
}

/// A feed with no ETag or Last-Modified (served with `Content-Encoding: gzip`): unchanged content polled again
/// sends nothing (recognised by the lines' CRC), appended lines are sent alone; with `dedup=item` a snapshot in
/// which one line changed sends that line only.
#[test]
fn a_feed_without_validators_sends_each_line_once_and_dedup_sends_only_changes() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let server = FeedServer::start();
    let encoded =
        |text: &str| Content { body: gzip(text.as_bytes()), gzip_encoding: true, content_type: "text/csv".into(), ..Default::default() };
    server.set("/growing.csv", encoded("a,1\nb,2\nc,3\n"));
    server.set("/snapshot.csv", encoded("Westgate,89\nKirkgate,0\nBroadway,12\n"));
    let (growing, snapshot) = (unique("e2e-feed-growing"), unique("e2e-feed-snapshot"));
    let config = |path: &str, topic: &str, dedup: &str| {
        json!({
            "connector.class": "HttpSource", "http.request.url": server.url(path), "http.response.format": "lines",
            "http.timer.interval.millis": 200, "http.response.dedup": dedup, "kafka.topic": topic,
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        })
    };
    let mut setup = WorkerSetup::new(dir.path(), &[]);
    setup.connector("growing-feed", config("/growing.csv", &growing, "none"));
    setup.connector("snapshot-feed", config("/snapshot.csv", &snapshot, "item"));
    let worker = setup.start();
    wait_for("the first lines", Duration::from_secs(60), || (topic_count(&growing) >= 3 && topic_count(&snapshot) >= 3).then_some(()));
    wait_for("more polls", Duration::from_secs(30), || {
        (server.answered("/growing.csv", 200) >= 4 && server.answered("/snapshot.csv", 200) >= 4).then_some(())
    });
    assert_eq!((topic_count(&growing), topic_count(&snapshot)), (3, 3), "unchanged content polled again sends nothing");

    server.set("/growing.csv", encoded("a,1\nb,2\nc,3\nd,4\n"));
    server.set("/snapshot.csv", encoded("Westgate,89\nKirkgate,7\nBroadway,12\n"));
    wait_for("the changes", Duration::from_secs(30), || (topic_count(&growing) >= 4 && topic_count(&snapshot) >= 4).then_some(()));
    let polls = server.answered("/snapshot.csv", 200);
    wait_for("more polls", Duration::from_secs(30), || (server.answered("/snapshot.csv", 200) >= polls + 3).then_some(()));
    let values = |topic: &str, n: usize| -> Vec<String> {
        read_topic(topic, n, Duration::from_secs(30)).iter().map(|r| String::from_utf8(r.3.clone().unwrap()).unwrap()).collect()
    };
    assert_eq!(values(&growing, 4), ["a,1", "b,2", "c,3", "d,4"], "an appended line is sent alone");
    assert_eq!(values(&snapshot, 4), ["Westgate,89", "Kirkgate,0", "Broadway,12", "Kirkgate,7"], "dedup=item: only the changed line");
    assert_eq!(worker.get("/connectors/snapshot-feed/status").1["tasks"][0]["state"], "RUNNING");
}

/// A plain JSON-lines file (no compression, `CONNECT_TEST_FEED_PLAIN_MB` MB, default 150) from a server that
/// honours `Range`: after a SIGKILL a third of the way, the restarted worker asks for the rest of the file from
/// the byte after the last line sent (`Range` + `If-Range`) instead of downloading and passing over what it
/// sent. Killed again at two thirds with the server now ignoring `Range`, it falls back to passing over the
/// lines. Every line arrives.
#[test]
fn a_plain_file_resumes_with_a_range_request_after_sigkill_and_passes_over_without_one() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let megabytes: usize = std::env::var("CONNECT_TEST_FEED_PLAIN_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let path = dir.path().join("schedule.jsonl");
    let lines = write_schedule_plain(&path, megabytes * 1024 * 1024);
    let server = FeedServer::start();
    let content = Content { file: Some(path.clone()), etag: Some("\"day-1\"".into()), ranges: true, ..Default::default() };
    server.set("/schedule.jsonl", content.clone());
    let topic = unique("e2e-feed-range");
    create_topic(&topic);
    let setup = schedule_feed(dir.path(), "range-feed", &server.url("/schedule.jsonl"), &topic);
    let written = |worker: &connect_e2e::Worker| {
        worker.get("/connectors/range-feed/metrics").1["tasks"][0]["records-written"].as_u64().unwrap_or(0) as usize
    };
    let mut worker = setup.start();
    wait_for("a third of the file in Kafka", Duration::from_secs(600), || (written(&worker) >= lines / 3).then_some(()));
    worker.kill_hard();
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("connect.offsets")).unwrap()).unwrap();
    let byte = stored["range-feed"][0]["offset"]["byte"].as_u64().expect("the offset keeps the byte reached");

    // Restarted: the rest of the body by a range request, nothing passed over.
    let mut worker = setup.start();
    // Another third (this worker's count starts at 0): killed again before the end of the file.
    let in_kafka = wait_for("another third of the file in Kafka", Duration::from_secs(600), || {
        let n = written(&worker);
        (n >= lines / 3).then_some(n)
    });
    let ranged: Vec<_> = server.requests().into_iter().filter(|r| r.range.is_some()).collect();
    assert_eq!(ranged.len(), 1, "one range request: {ranged:?}");
    assert_eq!(ranged[0].status, 206, "{ranged:?}");
    assert_eq!(ranged[0].range.as_deref(), Some(format!("bytes={byte}-").as_str()), "from the byte after the last line stored");
    let log = worker.log_text();
    assert!(log.contains("resuming the feed where it was left, with a range request"), "{}", tail(&log, 20));
    assert!(!log.contains("passed over the lines already sent"), "nothing passed over: {}", tail(&log, 20));
    worker.kill_hard();
    eprintln!("http source: the second worker wrote {in_kafka} of {lines} records before its kill");

    // Restarted against a server that ignores `Range`: the whole body, passing over what was sent.
    server.set("/schedule.jsonl", Content { ranges: false, ..content });
    let worker = setup.start();
    wait_for_or_explain(
        "the file read to its end",
        Duration::from_secs(600),
        || {
            let log = worker.log_text();
            (log.contains("passed over the lines already sent") && log.contains("read the feed to its end")).then_some(())
        },
        || tail(&worker.log_text(), 20),
    );
    let ranged: Vec<_> = server.requests().into_iter().filter(|r| r.range.is_some()).collect();
    assert_eq!(ranged.len(), 2, "the last start asked for a range too: {ranged:?}");
    assert_eq!(ranged[1].status, 200, "and got the whole body: {ranged:?}");
    std::thread::sleep(Duration::from_secs(3));
    let (total, missing, duplicates) = schedule_in_topic(&topic, lines);
    eprintln!("http source: {lines} lines, {total} records in Kafka, {missing} missing, {duplicates} duplicates");
    assert_eq!(missing, 0, "no line lost");
    assert_eq!(worker.get("/connectors/range-feed/status").1["tasks"][0]["state"], "RUNNING");
}
