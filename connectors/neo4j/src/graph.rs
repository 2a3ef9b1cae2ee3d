//! The server side: a neo4rs connection pool, one transaction per batch (its `UNWIND` statements and, with
//! exactly-once, the offset nodes), and what each error means for the records.

use crate::config::Neo4jSinkConfig;
use crate::query::{self, Statements};
use connect_core::{ErrorKind, TopicPartition};
use neo4rs::{BoltList, BoltMap, BoltType, Graph};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a batch did not commit. Nothing of it is in the graph: the server rolls back a transaction that failed or
/// whose connection went away, and a connection that might be out of step is never used again (the task
/// builds a new [`Target`] after any retriable error).
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The records' fault: a constraint they break, a type or arithmetic error the template hits on their
    /// values. Bisected down to the records at fault, which go to the DLQ with this message.
    #[error("{0}")]
    Data(String),
    /// The server cannot be reached or serve now (connection refused or broken, no answer before the deadline,
    /// database unavailable, leader switch): waited out, however long it takes.
    #[error("{0}")]
    Unreachable(String),
    /// The server answered with a transient error (deadlock, a transaction it terminated) or something this
    /// sink cannot read: retried as the retry keys say, then the task fails (and restarts by itself).
    #[error("{0}")]
    Transient(String),
    /// The template or the setup is wrong (syntax, authentication, a database that does not exist, a code this
    /// sink does not know).
    #[error("{0}")]
    Fatal(String),
}

impl WriteError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            WriteError::Data(_) => ErrorKind::Data,
            WriteError::Unreachable(_) | WriteError::Transient(_) => ErrorKind::Retriable,
            WriteError::Fatal(_) => ErrorKind::Fatal,
        }
    }
}

/// What a neo4rs error means here.
pub fn classify(error: neo4rs::Error) -> WriteError {
    use neo4rs::Error as E;
    match error {
        E::Neo4j(e) => by_code(e.code(), format!("{}: {}", e.code(), e.message())),
        // neo4rs 0.8 makes a FAILURE answer to BEGIN, COMMIT or PULL an unexpected message with the failure's
        // debug text in it: a constraint checked at commit, a deadlock at commit, an unknown database at BEGIN.
        E::UnexpectedMessage(text) => match failure_code(&text) {
            Some(code) => by_code(code, text.clone()),
            None => WriteError::Transient(format!("the server's answer could not be followed: {text}")),
        },
        E::StringTooLong | E::MapTooBig | E::BytesTooBig | E::ListTooLong => {
            WriteError::Data(format!("the record cannot be sent over Bolt: {error}"))
        }
        E::UrlParseError(_)
        | E::UnsupportedScheme(_)
        | E::InvalidDnsName(_)
        | E::InvalidConfig
        | E::UnsupportedVersion(_)
        | E::AuthenticationError(_) => WriteError::Fatal(error.to_string()),
        E::IOError { .. } | E::ConnectionError => WriteError::Unreachable(format!("the server cannot be reached: {error}")),
        other => WriteError::Transient(format!("the server's answer could not be read: {other}")),
    }
}

/// What a Neo4j status code means (ArcadeDB's Bolt plugin sends the same codes). Only codes known to be about
/// the values sent are the records' fault; a code not listed fails the task rather than send every record of
/// every batch to the DLQ.
pub fn by_code(code: &str, text: String) -> WriteError {
    const DATA: &[&str] = &[
        "Neo.ClientError.Statement.TypeError",
        "Neo.ClientError.Statement.ArgumentError",
        "Neo.ClientError.Statement.ArithmeticError",
        // MERGE on a null property value, among others.
        "Neo.ClientError.Statement.SemanticError",
        "Neo.ClientError.Statement.EntityNotFound",
        "Neo.ClientError.Statement.PropertyNotFound",
        "Neo.ClientError.Statement.ConstraintVerificationFailed",
        "Neo.ClientError.Schema.ConstraintValidationFailed",
    ];
    const OUTAGE: &[&str] = &[
        "Neo.TransientError.General.DatabaseUnavailable",
        "Neo.TransientError.Database.DatabaseUnavailable",
        "Neo.ClientError.Cluster.NotALeader",
        "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase",
    ];
    const TRANSIENT: &[&str] = &[
        "Neo.ClientError.Transaction.Terminated",
        "Neo.ClientError.Transaction.TransactionTimedOut",
        "Neo.ClientError.Transaction.TransactionNotFound",
        "Neo.ClientError.Transaction.LockClientStopped",
    ];
    if DATA.contains(&code) {
        WriteError::Data(text)
    } else if OUTAGE.contains(&code) {
        WriteError::Unreachable(text)
    } else if code.starts_with("Neo.TransientError.") || code.starts_with("Neo.DatabaseError.") || TRANSIENT.contains(&code) {
        WriteError::Transient(text)
    } else {
        WriteError::Fatal(text)
    }
}

/// The status code in neo4rs's debug text of a FAILURE message (`... "Neo.ClientError.Schema.X" ...`).
fn failure_code(text: &str) -> Option<&str> {
    if !text.contains("Failure") {
        return None;
    }
    let start = text.find("\"Neo.")? + 1;
    let end = start + text[start..].find('"')?;
    Some(&text[start..end])
}

/// One record of a batch, ready to send.
pub struct Item {
    /// Index into [`Statements`].
    pub statement: usize,
    /// The Kafka partition it was read from, and its offset there (for exactly-once).
    pub partition: Arc<TopicPartition>,
    pub offset: i64,
    pub event: BoltType,
}

pub struct Target {
    graph: Graph,
    database: String,
    /// The longest a transaction may take, from `neo4j.batch.timeout.msecs` / `neo4j.batch-timeout`, else
    /// [`DEADLINE`]: neo4rs has no read timeout, and a server that stopped answering must not hold a task forever.
    deadline: Duration,
    eos_label: Option<String>,
}

/// The deadline of a transaction when none is configured.
pub const DEADLINE: Duration = Duration::from_secs(300);

/// The deadline of reading the offset nodes on `open`, where the rebalance waits for it.
const OPEN_DEADLINE: Duration = Duration::from_secs(30);

impl Target {
    /// The pool connects lazily: a server that is down now is no reason to fail the task.
    pub async fn new(config: &Neo4jSinkConfig) -> Result<Self, WriteError> {
        let (user, password) = config.credentials.clone().unwrap_or_default();
        let mut builder =
            neo4rs::ConfigBuilder::default().uri(config.uri.as_str()).user(user).password(password).max_connections(config.pool_size);
        if !config.database.is_empty() {
            builder = builder.db(config.database.as_str());
        }
        if let Some(ca) = &config.ca_file {
            builder = builder.with_client_certificate(ca);
        }
        let graph = Graph::connect(builder.build().map_err(classify)?).await.map_err(classify)?;
        Ok(Target {
            graph,
            database: if config.database.is_empty() { "neo4j".to_string() } else { config.database.clone() },
            deadline: if config.batch_timeout.is_zero() { DEADLINE } else { config.batch_timeout },
            eos_label: config.eos_label.clone(),
        })
    }

    /// Write `items` in one transaction: each run of items with the same statement as one `UNWIND`, in order;
    /// with exactly-once, only items past their partition's offset node, which moves to the last one.
    pub async fn write(&self, statements: &Statements, items: &[&Item]) -> Result<(), WriteError> {
        within(self.deadline, " (the batch timeout)", self.write_once(statements, items)).await
    }

    async fn write_once(&self, statements: &Statements, items: &[&Item]) -> Result<(), WriteError> {
        let mut txn = self.graph.start_txn_on(self.database.as_str()).await.map_err(classify)?;
        let mut last: HashMap<Arc<TopicPartition>, i64> = HashMap::new();
        // Exactly-once: the next offset to write per partition, from its offset node.
        let mut next_offsets: HashMap<Arc<TopicPartition>, i64> = HashMap::new();
        if let Some(label) = &self.eos_label {
            let mut partitions: Vec<&Arc<TopicPartition>> = items.iter().map(|i| &i.partition).collect();
            partitions.sort();
            partitions.dedup();
            let mut rows = txn
                .execute(neo4rs::query(&query::merge_offsets(label)).param("partitions", partition_list(&partitions, None)))
                .await
                .map_err(classify)?;
            while let Some(row) = rows.next(txn.handle()).await.map_err(classify)? {
                let (topic, partition, next) = offset_row(&row)?;
                if let Some(tp) = partitions.iter().find(|tp| tp.topic == topic && tp.partition == partition) {
                    next_offsets.insert(Arc::clone(tp), next);
                }
            }
        }
        tracing::debug!(?next_offsets, items = items.len(), first = ?items.first().map(|i| (i.partition.partition, i.offset)), last = ?items.last().map(|i| (i.partition.partition, i.offset)), "transaction");
        let mut start = 0;
        while start < items.len() {
            let statement = items[start].statement;
            let mut end = start;
            let mut events = BoltList::with_capacity(items.len() - start);
            while end < items.len() && items[end].statement == statement {
                let item = items[end];
                end += 1;
                if next_offsets.get(&item.partition).is_some_and(|&next| item.offset < next) {
                    continue; // exactly-once: already in the graph
                }
                last.insert(Arc::clone(&item.partition), item.offset);
                events.push(item.event.clone());
            }
            if !events.is_empty() {
                txn.run(neo4rs::query(statements.cypher(statement)).param("events", BoltType::List(events))).await.map_err(classify)?;
            }
            start = end;
        }
        if let Some(label) = &self.eos_label {
            if !last.is_empty() {
                let partitions: Vec<&Arc<TopicPartition>> = last.keys().collect();
                let offsets: Vec<i64> = partitions.iter().map(|tp| last[*tp]).collect();
                txn.run(neo4rs::query(&query::set_offsets(label)).param("partitions", partition_list(&partitions, Some(&offsets))))
                    .await
                    .map_err(classify)?;
            }
        }
        txn.commit().await.map_err(classify)
    }

    /// The next offset to write per partition, from the offset nodes (exactly-once); partitions without one are
    /// left out.
    pub async fn stored_next_offsets(&self, partitions: &[TopicPartition]) -> Result<HashMap<TopicPartition, i64>, WriteError> {
        within(OPEN_DEADLINE, "", self.read_offsets(partitions)).await
    }

    async fn read_offsets(&self, partitions: &[TopicPartition]) -> Result<HashMap<TopicPartition, i64>, WriteError> {
        let Some(label) = &self.eos_label else { return Ok(HashMap::new()) };
        let refs: Vec<Arc<TopicPartition>> = partitions.iter().cloned().map(Arc::new).collect();
        let refs: Vec<&Arc<TopicPartition>> = refs.iter().collect();
        let mut txn = self.graph.start_txn_on(self.database.as_str()).await.map_err(classify)?;
        let mut rows = txn
            .execute(neo4rs::query(&query::read_offsets(label)).param("partitions", partition_list(&refs, None)))
            .await
            .map_err(classify)?;
        let mut out = HashMap::new();
        while let Some(row) = rows.next(txn.handle()).await.map_err(classify)? {
            let (topic, partition, next) = offset_row(&row)?;
            out.insert(TopicPartition::new(topic, partition), next);
        }
        txn.commit().await.map_err(classify)?;
        Ok(out)
    }

    /// Exactly-once: move offset nodes forward to at least `last` (the last offset settled per partition), for
    /// records that were reported rather than written, so a restart does not report them again.
    pub async fn advance_offsets(&self, last: &HashMap<Arc<TopicPartition>, i64>) -> Result<(), WriteError> {
        let Some(label) = &self.eos_label else { return Ok(()) };
        if last.is_empty() {
            return Ok(());
        }
        let partitions: Vec<&Arc<TopicPartition>> = last.keys().collect();
        let offsets: Vec<i64> = partitions.iter().map(|tp| last[*tp]).collect();
        let work = async {
            let mut txn = self.graph.start_txn_on(self.database.as_str()).await.map_err(classify)?;
            txn.run(neo4rs::query(&query::advance_offsets(label)).param("partitions", partition_list(&partitions, Some(&offsets))))
                .await
                .map_err(classify)?;
            txn.commit().await.map_err(classify)
        };
        within(self.deadline, "", work).await
    }
}

/// `work`, or an outage if the server has not answered within `limit` (neo4rs has no read timeout).
async fn within<T>(limit: Duration, why: &str, work: impl std::future::Future<Output = Result<T, WriteError>>) -> Result<T, WriteError> {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err(WriteError::Unreachable(format!("no answer from the server within {limit:?}{why}"))))
}

/// `[{topic, partition[, offset]}]` for the offset-node queries.
fn partition_list(partitions: &[&Arc<TopicPartition>], offsets: Option<&[i64]>) -> BoltType {
    let mut list = BoltList::with_capacity(partitions.len());
    for (i, tp) in partitions.iter().enumerate() {
        let mut map = BoltMap::with_capacity(3);
        map.put("topic".into(), BoltType::from(tp.topic.as_str()));
        map.put("partition".into(), BoltType::from(tp.partition as i64));
        if let Some(offsets) = offsets {
            map.put("offset".into(), BoltType::from(offsets[i]));
        }
        list.push(BoltType::Map(map));
    }
    BoltType::List(list)
}

fn offset_row(row: &neo4rs::Row) -> Result<(String, i32, i64), WriteError> {
    let bad = |e: neo4rs::DeError| WriteError::Fatal(format!("an offset node reads back wrong: {e}"));
    Ok((row.get::<String>("topic").map_err(bad)?, row.get::<i64>("partition").map_err(bad)? as i32, row.get::<i64>("next").map_err(bad)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_say_whose_fault_it_is() {
        let kind = |code: &str| by_code(code, String::new()).kind();
        assert_eq!(kind("Neo.ClientError.Statement.ArithmeticError"), ErrorKind::Data);
        assert_eq!(kind("Neo.ClientError.Schema.ConstraintValidationFailed"), ErrorKind::Data);
        assert_eq!(kind("Neo.ClientError.Statement.SyntaxError"), ErrorKind::Fatal);
        assert_eq!(kind("Neo.ClientError.Security.Unauthorized"), ErrorKind::Fatal);
        assert_eq!(kind("Neo.ClientError.Procedure.ProcedureNotFound"), ErrorKind::Fatal, "unknown client codes are not the records'");
        assert!(matches!(by_code("Neo.TransientError.Transaction.DeadlockDetected", String::new()), WriteError::Transient(_)));
        assert!(matches!(by_code("Neo.ClientError.Cluster.NotALeader", String::new()), WriteError::Unreachable(_)));
        assert!(matches!(by_code("Neo.TransientError.Database.DatabaseUnavailable", String::new()), WriteError::Unreachable(_)));
    }

    #[test]
    fn a_failure_to_commit_is_classified_by_its_code() {
        // neo4rs 0.8's text for a FAILURE answer to COMMIT.
        let text = r#"unexpected response for COMMIT: Failure(Failure { metadata: BoltMap { value: {BoltString { value: "message" }: String(BoltString { value: "Node(0) with label `X` must have the property `id`" }), BoltString { value: "code" }: String(BoltString { value: "Neo.ClientError.Schema.ConstraintValidationFailed" })} } })"#;
        assert!(matches!(classify(neo4rs::Error::UnexpectedMessage(text.into())), WriteError::Data(_)));
        assert!(matches!(
            classify(neo4rs::Error::UnexpectedMessage("unexpected response for COMMIT: Ignored".into())),
            WriteError::Transient(_)
        ));
        assert!(matches!(classify(neo4rs::Error::ConnectionError), WriteError::Unreachable(_)));
    }
}
