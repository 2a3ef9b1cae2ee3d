//! The server side: a neo4rs connection pool, one transaction per batch (its `UNWIND` statements and, with
//! exactly-once, the offset nodes), and what each error means for the records.

use crate::config::Neo4jSinkConfig;
use crate::query::{self, Statements};
use connect_core::{ErrorKind, TopicPartition};
use neo4rs::{BoltList, BoltMap, BoltType, Graph};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a batch did not commit. Nothing of it is in the graph: the transaction was rolled back or never began.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The records' fault: a constraint they break, a type or arithmetic error the template hits on their
    /// values. Bisected down to the records at fault, which go to the DLQ with this message.
    #[error("{0}")]
    Data(String),
    /// The server cannot be reached, or the connection broke: waited out, however long it takes.
    #[error("{0}")]
    Unreachable(String),
    /// The server answered with a transient error (deadlock, leader switch, a timed-out transaction): retried
    /// `neo4j.retry.max.attemps` times.
    #[error("{0}")]
    Transient(String),
    /// The template or the setup is wrong (syntax, authentication, a database that does not exist).
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

/// What a neo4rs error means here. The server's codes are Neo4j's status codes (ArcadeDB's Bolt plugin sends
/// the same ones).
pub fn classify(error: neo4rs::Error) -> WriteError {
    use neo4rs::Error as E;
    match error {
        E::Neo4j(e) => {
            let (code, message) = (e.code(), e.message());
            let text = format!("{code}: {message}");
            if code.starts_with("Neo.TransientError.")
                || matches!(
                    code,
                    "Neo.ClientError.Cluster.NotALeader"
                        | "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase"
                        | "Neo.ClientError.Transaction.Terminated"
                        | "Neo.ClientError.Transaction.TransactionTimedOut"
                        | "Neo.ClientError.Transaction.TransactionNotFound"
                        | "Neo.ClientError.Transaction.LockClientStopped"
                )
                || code.starts_with("Neo.DatabaseError.")
            {
                WriteError::Transient(text)
            } else if code.starts_with("Neo.ClientError.Statement.SyntaxError")
                || code.starts_with("Neo.ClientError.Statement.ParameterMissing")
                || code.starts_with("Neo.ClientError.Security.")
                || code.starts_with("Neo.ClientError.Database.")
                || code.starts_with("Neo.ClientError.Request.")
            {
                WriteError::Fatal(text)
            } else {
                // Statement.{TypeError, ArgumentError, ArithmeticError, SemanticError (MERGE on a null
                // property), EntityNotFound}, Schema.ConstraintValidationFailed: about the values sent.
                WriteError::Data(text)
            }
        }
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
        other => WriteError::Unreachable(format!("the connection failed: {other}")),
    }
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
    timeout: Option<Duration>,
    eos_label: Option<String>,
}

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
            timeout: Some(config.batch_timeout).filter(|t| !t.is_zero()),
            eos_label: config.eos_label.clone(),
        })
    }

    /// Write `items` in one transaction: each run of items with the same statement as one `UNWIND`, in order;
    /// with exactly-once, only items past their partition's offset node, which moves to the last one.
    pub async fn write(&self, statements: &Statements, items: &[&Item]) -> Result<(), WriteError> {
        let work = self.write_once(statements, items);
        match self.timeout {
            None => work.await,
            Some(limit) => tokio::time::timeout(limit, work)
                .await
                .unwrap_or_else(|_| Err(WriteError::Transient(format!("the transaction took longer than {limit:?} (the batch timeout)")))),
        }
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
