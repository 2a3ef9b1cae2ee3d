//! The Cypher the sink sends: each topic's template behind the `UNWIND` that binds a batch's records, as the
//! two Neo4j connectors write it, and the exactly-once offset-node statements.

use crate::config::{Bindings, Flavour, Neo4jSinkConfig};
use std::collections::HashMap;

/// The rendered statement of each topic, by index, so a batch's items carry a small number.
pub struct Statements {
    cypher: Vec<String>,
    by_topic: HashMap<String, usize>,
}

impl Statements {
    pub fn new(config: &Neo4jSinkConfig) -> Self {
        let mut statements = Statements { cypher: Vec::new(), by_topic: HashMap::new() };
        for (topic, template) in &config.topics {
            statements.by_topic.insert(topic.clone(), statements.cypher.len());
            statements.cypher.push(render(template, config.flavour, &config.bindings));
        }
        statements
    }

    pub fn of_topic(&self, topic: &str) -> Option<usize> {
        self.by_topic.get(topic).copied()
    }

    pub fn cypher(&self, index: usize) -> &str {
        &self.cypher[index]
    }
}

/// The legacy connector prepends `UNWIND $events AS event`; the current one binds the record's parts under
/// their configured names first (`bolt::event` builds the matching maps).
pub fn render(template: &str, flavour: Flavour, bindings: &Bindings) -> String {
    match flavour {
        Flavour::Legacy => format!("UNWIND $events AS event {template}"),
        Flavour::Current => {
            let mut with = Vec::new();
            if bindings.value_as_event {
                with.push("message.value AS event".to_string());
            }
            for (part, name) in
                [("header", &bindings.header), ("key", &bindings.key), ("value", &bindings.value), ("timestamp", &bindings.timestamp)]
            {
                if !name.is_empty() {
                    with.push(format!("message.{part} AS {name}"));
                }
            }
            format!("UNWIND $events AS message WITH {} WITH * {template}", with.join(", "))
        }
    }
}

/// The strategy name the offset nodes carry, as the current connector's Cypher strategy writes it.
const STRATEGY: &str = "CYPHER";

/// Find or make the offset node of each `$partitions` entry (offset -1 when new, as the Neo4j connector makes
/// it) and return the next offset to write. Returned as `offset + 1`, never negative: neo4rs 0.8 reads the
/// one-byte integers -16..-1 as 240..255 (fixed in its 0.9 line), so -1 would read back as 255.
pub fn merge_offsets(label: &str) -> String {
    format!(
        "UNWIND $partitions AS p MERGE (k:{label} {{strategy: '{STRATEGY}', topic: p.topic, partition: p.partition}}) \
         ON CREATE SET k.offset = -1 RETURN k.topic AS topic, k.partition AS partition, k.offset + 1 AS next"
    )
}

/// Move each `$partitions` entry's offset node to its `offset`.
pub fn set_offsets(label: &str) -> String {
    format!("UNWIND $partitions AS p MATCH (k:{label} {{strategy: '{STRATEGY}', topic: p.topic, partition: p.partition}}) SET k.offset = p.offset")
}

/// Move each `$partitions` entry's offset node (made if missing) up to its `offset`, never back.
pub fn advance_offsets(label: &str) -> String {
    format!(
        "UNWIND $partitions AS p MERGE (k:{label} {{strategy: '{STRATEGY}', topic: p.topic, partition: p.partition}}) \
         ON CREATE SET k.offset = -1 WITH k, p WHERE k.offset < p.offset SET k.offset = p.offset"
    )
}

/// The next offset to write of each of `$partitions` that has an offset node, without making any.
pub fn read_offsets(label: &str) -> String {
    format!(
        "UNWIND $partitions AS p MATCH (k:{label} {{strategy: '{STRATEGY}', topic: p.topic, partition: p.partition}}) \
         RETURN k.topic AS topic, k.partition AS partition, k.offset + 1 AS next"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_flavours_bind_as_their_connectors_do() {
        let none =
            Bindings { value_as_event: true, value: String::new(), key: String::new(), header: String::new(), timestamp: String::new() };
        assert_eq!(
            render("MERGE (t:train{id: event.TRAIN_ID})", Flavour::Legacy, &none),
            "UNWIND $events AS event MERGE (t:train{id: event.TRAIN_ID})"
        );
        let all = Bindings {
            value_as_event: true,
            value: "__value".into(),
            key: "__key".into(),
            header: "__header".into(),
            timestamp: "__timestamp".into(),
        };
        assert_eq!(
            render("CREATE (:X {k: __key})", Flavour::Current, &all),
            "UNWIND $events AS message WITH message.value AS event, message.header AS __header, message.key AS __key, \
             message.value AS __value, message.timestamp AS __timestamp WITH * CREATE (:X {k: __key})"
        );
    }
}
