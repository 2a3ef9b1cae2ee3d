//! Connectors that exercise the runtime's failure handling, as Kafka ships `VerifiableSourceConnector`
//! and `MockSourceConnector` with Connect.
//!
//! `FlakySource` emits numbered records and can fail its first N starts (counted in a file, so the count
//! survives task restarts), fail after some polls, or panic. Depends on connect-core and tokio only.

use connect_core::plugin::ConnectorPlugin;
use connect_core::{
    async_trait, schemas, AnyConnector, Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Connector, ConnectorContext, ConnectorType,
    Importance, RecordData, Result, SinkConnector, SinkRecord, SinkTask, SinkTaskContext, SourceConnector, SourceMap, SourceRecord,
    SourceTask, SourceTaskContext, Validator, Value,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const FLAKY_SOURCE_CLASS: &str = "io.connectrs.testing.FlakySourceConnector";
pub const REJECTING_SINK_CLASS: &str = "io.connectrs.testing.RejectingSinkConnector";

pub fn plugins() -> Vec<ConnectorPlugin> {
    vec![
        ConnectorPlugin {
            class: FLAKY_SOURCE_CLASS,
            aliases: &["FlakySource"],
            kind: ConnectorType::Source,
            version: env!("CARGO_PKG_VERSION"),
            create: || AnyConnector::Source(Box::<FlakySourceConnector>::default()),
        },
        ConnectorPlugin {
            class: REJECTING_SINK_CLASS,
            aliases: &["RejectingSink"],
            kind: ConnectorType::Sink,
            version: env!("CARGO_PKG_VERSION"),
            create: || AnyConnector::Sink(Box::<RejectingSinkConnector>::default()),
        },
    ]
}

fn def() -> ConfigDef {
    ConfigDef::new()
        .define(ConfigKey::new(
            "bad.every",
            ConfigType::Long,
            Some("0"),
            Importance::Low,
            "Every Nth record's value is an int64 instead of a string, so a byte-array converter rejects it; 0 never",
        ))
        .define(
            ConfigKey::required("topic", ConfigType::String, Importance::High, "Topic to write to").validator(Validator::NonEmptyString),
        )
        .define(
            ConfigKey::new(
                "records",
                ConfigType::Long,
                Some("100"),
                Importance::Medium,
                "How many records to emit in all (per source partition with `partitions` > 1)",
            )
            .validator(Validator::at_least(0.0)),
        )
        .define(
            ConfigKey::new("fail.starts", ConfigType::Int, Some("0"), Importance::Medium, "Fail this many task starts before one succeeds")
                .validator(Validator::at_least(0.0)),
        )
        .define(ConfigKey::new(
            "fail.after.records",
            ConfigType::Long,
            Some("-1"),
            Importance::Low,
            "Fail once (per start count file) after emitting this many records; -1 never",
        ))
        .define(ConfigKey::new(
            "panic.on.poll",
            ConfigType::Boolean,
            Some("false"),
            Importance::Low,
            "Panic in poll (to test task isolation)",
        ))
        .define(ConfigKey::new(
            "state.file",
            ConfigType::String,
            Some(""),
            Importance::Medium,
            "File that counts task starts across restarts",
        ))
        .define(
            ConfigKey::new(
                "partitions",
                ConfigType::Int,
                Some("1"),
                Importance::Low,
                "Source partitions, shared among the tasks in contiguous groups; each emits `records` records",
            )
            .validator(Validator::at_least(1.0)),
        )
        .define(ConfigKey::new(
            TASK_PARTITIONS,
            ConfigType::List,
            Some(""),
            Importance::Low,
            "Set by the connector: the source partitions this task runs (all when empty)",
        ))
        .define(ConfigKey::new(
            "claims.dir",
            ConfigType::String,
            Some(""),
            Importance::Low,
            "A task claims each of its partitions here while it runs; a partition another task still holds is \
             written to the file `conflicts` in this folder and fails the start (two tasks on one partition); \
             each start that claimed its partitions adds them as a line to the file `starts`",
        ))
        .define(
            ConfigKey::new("poll.delay.ms", ConfigType::Long, Some("0"), Importance::Low, "Each poll waits this long before it emits")
                .validator(Validator::at_least(0.0)),
        )
        .define(
            ConfigKey::new(
                "stop.delay.ms",
                ConfigType::Long,
                Some("0"),
                Importance::Low,
                "Stopping takes this long (a task that flushes a buffer); its claims are given back at the end",
            )
            .validator(Validator::at_least(0.0)),
        )
}

const TASK_PARTITIONS: &str = "task.partitions";

#[derive(Default)]
pub struct FlakySourceConnector {
    config: Config,
}

#[async_trait]
impl Connector for FlakySourceConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        def()
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        def().parse(&config)?;
        self.config = config;
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>> {
        let partitions = def().parse(&self.config)?.int("partitions").max(1) as usize;
        if partitions == 1 {
            return Ok(vec![self.config.clone()]);
        }
        // Contiguous groups, the first ones one larger when they do not come out even, as Kafka's
        // ConnectorUtils.groupPartitions makes them.
        let groups = max_tasks.clamp(1, partitions);
        let (size, larger) = (partitions / groups, partitions % groups);
        Ok((0..groups)
            .map(|group| {
                let start = group * size + group.min(larger);
                let end = start + size + usize::from(group < larger);
                let mut config = self.config.clone();
                let ids: Vec<String> = (start..end).map(|p| p.to_string()).collect();
                config.insert(TASK_PARTITIONS.to_string(), ids.join(","));
                config
            })
            .collect())
    }
}

impl SourceConnector for FlakySourceConnector {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::<FlakySourceTask>::default()
    }
}

#[derive(Default)]
pub struct FlakySourceTask {
    topic: String,
    total: i64,
    emitted_this_run: i64,
    fail_after: i64,
    panic_on_poll: bool,
    bad_every: i64,
    /// This task's source partitions, each with the number of its next record; `None` of a partition's own
    /// when the connector has a single one (its records keep the plain `record-N` form).
    partitions: Vec<FlakyPartition>,
    /// The partition the next poll serves (round robin).
    cursor: usize,
    /// The claim files this task holds, removed when it stops (or is dropped).
    claims: Claims,
    poll_delay: Duration,
    stop_delay: Duration,
}

struct FlakyPartition {
    id: Option<usize>,
    map: Arc<SourceMap>,
    next: i64,
}

/// Claim files held by a task, removed when dropped: on a normal stop, and also when the task is dropped
/// without one (a panic, an abandoned stop), so a later task never trips over a claim nobody holds.
#[derive(Default)]
struct Claims(Vec<PathBuf>);

impl Drop for Claims {
    fn drop(&mut self) {
        for path in self.0.drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Claim each partition with a file created only if absent, and list the start in `starts`; on a partition
/// another task holds, note the conflict in `conflicts` and give back what was claimed (as on any error).
fn claim(dir: &str, ids: &[Option<usize>]) -> Result<Claims> {
    std::fs::create_dir_all(dir)?;
    let mut claimed = Claims::default();
    for id in ids {
        let path = PathBuf::from(dir).join(format!("partition-{}", id.unwrap_or(0)));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => claimed.0.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                append_line(dir, "conflicts", &path.display().to_string())?;
                return Err(ConnectError::retriable(format!("FlakySource: {} is still held by another task", path.display())));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let held: Vec<String> = ids.iter().map(|id| id.unwrap_or(0).to_string()).collect();
    append_line(dir, "starts", &held.join(","))?;
    Ok(claimed)
}

fn append_line(dir: &str, file: &str, line: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(PathBuf::from(dir).join(file))?;
    writeln!(out, "{line}")?;
    Ok(())
}

/// Increment and return the start count kept in `path`.
fn count_start(path: &PathBuf) -> Result<u64> {
    let previous: u64 = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    std::fs::write(path, (previous + 1).to_string())?;
    Ok(previous + 1)
}

#[async_trait]
impl SourceTask for FlakySourceTask {
    async fn start(&mut self, context: SourceTaskContext, config: Config) -> Result<()> {
        let parsed = def().parse(&config)?;
        let state_file = parsed.string("state.file");
        let fail_starts = parsed.int("fail.starts") as u64;
        if !state_file.is_empty() {
            let start = count_start(&PathBuf::from(&state_file))?;
            if start <= fail_starts {
                return Err(ConnectError::retriable(format!("FlakySource: start {start} of the first {fail_starts} fails on purpose")));
            }
        } else if fail_starts > 0 {
            return Err(ConnectError::fatal("FlakySource: fail.starts needs state.file"));
        }
        self.topic = parsed.string("topic");
        self.total = parsed.int("records");
        self.fail_after = parsed.int("fail.after.records");
        self.panic_on_poll = parsed.boolean("panic.on.poll");
        self.bad_every = parsed.int("bad.every");
        let ids: Vec<Option<usize>> = if parsed.int("partitions") <= 1 {
            vec![None]
        } else {
            let listed = parsed.list(TASK_PARTITIONS);
            let all = (0..parsed.int("partitions") as usize).map(|p| p.to_string()).collect();
            let listed = if listed.is_empty() { all } else { listed };
            listed
                .iter()
                .map(|p| p.trim().parse().map(Some).map_err(|_| ConnectError::fatal(format!("{TASK_PARTITIONS}: {p:?} is not a number"))))
                .collect::<Result<_>>()?
        };
        self.stop_delay = Duration::from_millis(parsed.int("stop.delay.ms").max(0) as u64);
        let claims_dir = parsed.string("claims.dir");
        if !claims_dir.is_empty() {
            self.claims = claim(&claims_dir, &ids)?;
        }
        self.poll_delay = Duration::from_millis(parsed.int("poll.delay.ms").max(0) as u64);
        self.partitions = ids
            .into_iter()
            .map(|id| {
                let mut map = SourceMap::new();
                map.insert("source".into(), "flaky".into());
                if let Some(id) = id {
                    map.insert("partition".into(), (id as i64).into());
                }
                let next = context.offsets.offset(&map).and_then(|o| o.get("next").and_then(|n| n.as_i64())).unwrap_or(0);
                FlakyPartition { id, map: Arc::new(map), next }
            })
            .collect();
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if self.panic_on_poll {
            panic!("FlakySource panics on purpose");
        }
        if self.fail_after >= 0 && self.emitted_this_run >= self.fail_after {
            return Err(ConnectError::fatal(format!("FlakySource: failing on purpose after {} records", self.emitted_this_run)));
        }
        if !self.poll_delay.is_zero() {
            tokio::time::sleep(self.poll_delay).await;
        }
        let count = self.partitions.len();
        let Some(index) = (0..count).map(|i| (self.cursor + i) % count).find(|&i| self.partitions[i].next < self.total) else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Ok(Vec::new());
        };
        self.cursor = (index + 1) % count;
        let partition = &mut self.partitions[index];
        let n = partition.next;
        partition.next += 1;
        self.emitted_this_run += 1;
        let mut offset = SourceMap::new();
        offset.insert("next".into(), partition.next.into());
        let data = if self.bad_every > 0 && (n + 1) % self.bad_every == 0 {
            RecordData::new(self.topic.clone(), None, Value::Int64(n))
        } else {
            let text = match partition.id {
                None => format!("record-{n}"),
                Some(id) => format!("p{id}-record-{n}"),
            };
            RecordData::new(self.topic.clone(), Some(schemas::string()), Value::String(text))
        };
        Ok(vec![SourceRecord::new(partition.map.clone(), offset, data)])
    }

    async fn stop(&mut self) -> Result<()> {
        tokio::time::sleep(self.stop_delay).await;
        self.claims = Claims::default();
        Ok(())
    }
}

fn sink_def() -> ConfigDef {
    ConfigDef::new()
        .define(ConfigKey::required("file", ConfigType::String, Importance::High, "File the accepted values are appended to, one per line"))
        .define(ConfigKey::new(
            "reject.marker",
            ConfigType::String,
            Some("reject"),
            Importance::Medium,
            "Values containing this text are rejected, as a target rejects bad rows",
        ))
        .define(ConfigKey::new(
            "retriable.failures.ms",
            ConfigType::Long,
            Some("0"),
            Importance::Low,
            "For this long after the first put, every put fails with a retriable error (a target that is down)",
        ))
        .define(ConfigKey::new(
            "retry.timeout.ms",
            ConfigType::Long,
            Some("300"),
            Importance::Low,
            "The delay a failing put asks the runtime for (SinkTaskContext::timeout)",
        ))
        .define(ConfigKey::new(
            "pause.on.retry",
            ConfigType::Boolean,
            Some("false"),
            Importance::Low,
            "A failing put also pauses every assigned partition (as an HTTP sink pausing on 429 would); they stay paused",
        ))
}

/// A sink whose "target" rejects some records: it appends values to a file and reports every value that
/// contains `reject.marker` through the errant-record reporter, writing the rest of the batch.
#[derive(Default)]
pub struct RejectingSinkConnector {
    config: Config,
}

#[async_trait]
impl Connector for RejectingSinkConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        sink_def()
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        sink_def().parse(&config)?;
        self.config = config;
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![self.config.clone(); max_tasks.max(1)])
    }
}

impl SinkConnector for RejectingSinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::<RejectingSinkTask>::default()
    }
}

#[derive(Default)]
pub struct RejectingSinkTask {
    file: Option<std::fs::File>,
    marker: String,
    context: Option<SinkTaskContext>,
    failures_for: std::time::Duration,
    retry_timeout: std::time::Duration,
    pause_on_retry: bool,
    first_put: Option<std::time::Instant>,
}

#[async_trait]
impl SinkTask for RejectingSinkTask {
    async fn start(&mut self, context: SinkTaskContext, config: Config) -> Result<()> {
        let parsed = sink_def().parse(&config)?;
        self.file = Some(std::fs::OpenOptions::new().create(true).append(true).open(parsed.string("file"))?);
        self.marker = parsed.string("reject.marker");
        self.failures_for = std::time::Duration::from_millis(parsed.int("retriable.failures.ms").max(0) as u64);
        self.retry_timeout = std::time::Duration::from_millis(parsed.int("retry.timeout.ms").max(0) as u64);
        self.pause_on_retry = parsed.boolean("pause.on.retry");
        self.context = Some(context);
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<()> {
        use std::io::Write;
        let first_put = *self.first_put.get_or_insert_with(std::time::Instant::now);
        if first_put.elapsed() < self.failures_for {
            if let Some(context) = &self.context {
                context.timeout(self.retry_timeout);
                if self.pause_on_retry {
                    context.pause(&context.assignment());
                }
            }
            return Err(ConnectError::retriable("the target is unavailable (on purpose)"));
        }
        let reporter = self.context.as_ref().and_then(|c| c.errant_record_reporter());
        let mut out = Vec::new();
        for record in records {
            let text = record.data.value.to_string();
            if text.contains(&self.marker) {
                let error = ConnectError::data(format!("target rejected the value {text:?}"));
                match &reporter {
                    Some(r) => r.report(record, &error).await?,
                    None => return Err(error),
                }
                continue;
            }
            out.extend_from_slice(text.as_bytes());
            out.push(b'\n');
        }
        self.file.as_mut().ok_or_else(|| ConnectError::fatal("not started"))?.write_all(&out)?;
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}
