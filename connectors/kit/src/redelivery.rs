//! What a sink that writes within `put` remembers across redeliveries of a batch.
//!
//! After a retriable failure the runtime hands the same batch to `put` again (some records may be gone if their
//! partitions were revoked). A sink whose `put` got part of the batch through records each record it settled
//! (written, reported, skipped) in [`Settled`] and skips those on the redelivery, so a retry sends nothing twice.
//!
//! A record is identified by its original coordinates **and its occurrence** among the batch's records with
//! those coordinates: a transform that turns one record into several (Explode) gives every part the same
//! coordinates, and each part must still be settled on its own.

use connect_core::SinkRecord;
use std::collections::{HashMap, HashSet};

/// One record of a batch: original topic, partition, offset, and which part of that Kafka record it is (0 for
/// the only or first one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordId {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub part: u32,
}

impl RecordId {
    /// The ids of a batch's records, in order.
    pub fn of_batch(records: &[SinkRecord]) -> Vec<RecordId> {
        let mut seen: HashMap<(&str, i32, i64), u32> = HashMap::new();
        records
            .iter()
            .map(|r| {
                let part = seen.entry((r.original_topic(), r.original_partition(), r.original_offset())).or_insert(0);
                let id = RecordId {
                    topic: r.original_topic().to_string(),
                    partition: r.original_partition(),
                    offset: r.original_offset(),
                    part: *part,
                };
                *part += 1;
                id
            })
            .collect()
    }
}

impl std::fmt::Display for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}@{}", self.topic, self.partition, self.offset)?;
        if self.part > 0 {
            write!(f, " (part {})", self.part + 1)?;
        }
        Ok(())
    }
}

/// Records of the batch being (re)delivered that need nothing more. Cleared when a `put` settles its whole batch.
#[derive(Debug, Default)]
pub struct Settled(HashSet<RecordId>);

impl Settled {
    pub fn contains(&self, id: &RecordId) -> bool {
        self.0.contains(id)
    }
    pub fn insert(&mut self, id: RecordId) {
        self.0.insert(id);
    }
    pub fn clear(&mut self) {
        self.0.clear();
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{RecordData, TimestampType, Value};

    #[test]
    fn parts_of_one_kafka_record_are_told_apart() {
        let r = |offset| SinkRecord::new(RecordData::new("t", None, Value::Null), 0, offset, TimestampType::CreateTime);
        // An exploded record: three parts of offset 5, between offsets 4 and 6.
        let batch = [r(4), r(5), r(5), r(5), r(6)];
        let ids = RecordId::of_batch(&batch);
        assert_eq!(ids.iter().map(|i| (i.offset, i.part)).collect::<Vec<_>>(), [(4, 0), (5, 0), (5, 1), (5, 2), (6, 0)]);
        let mut settled = Settled::default();
        settled.insert(ids[1].clone());
        assert!(settled.contains(&RecordId::of_batch(&batch)[1]));
        assert!(!settled.contains(&ids[2]), "part 2 is not settled by part 1");
        assert_eq!(ids[3].to_string(), "t-0@5 (part 3)");
    }
}
