//! Single-message transforms and predicates, and the chain that applies them.

use crate::config::{Config, ConfigDef};
use crate::error::{ConnectError, Result};
use crate::record::RecordData;

/// What a transform did with a record.
#[derive(Debug, PartialEq)]
pub enum Transformed {
    /// The record (possibly changed in place) goes on.
    Keep,
    /// The record is filtered out.
    Drop,
    /// The record is replaced by these (e.g. exploding an array into one record per element).
    Split(Vec<RecordData>),
}

/// A single-message transform.
pub trait Transformation: Send + Sync {
    fn config_def(&self) -> ConfigDef;
    fn configure(&mut self, config: &Config) -> Result<()>;
    /// Transform in place. A record of the wrong shape is a data error, never a panic.
    fn apply(&self, record: &mut RecordData) -> Result<Transformed>;
}

/// A condition on a record, for `transforms.<name>.predicate`.
pub trait Predicate: Send + Sync {
    fn config_def(&self) -> ConfigDef;
    fn configure(&mut self, config: &Config) -> Result<()>;
    fn test(&self, record: &RecordData) -> bool;
}

/// One configured step of a chain.
pub struct TransformStep {
    /// The alias in `transforms=a,b`.
    pub alias: String,
    /// The class name, for error reports.
    pub class: String,
    pub transform: Box<dyn Transformation>,
    /// Apply only where the predicate holds (or, negated, does not).
    pub predicate: Option<(Box<dyn Predicate>, bool)>,
}

/// A failure inside the chain, naming the step.
#[derive(Debug, thiserror::Error)]
#[error("transform '{alias}' ({class}) failed: {error}")]
pub struct TransformError {
    pub alias: String,
    pub class: String,
    #[source]
    pub error: ConnectError,
}

/// The configured transforms of a connector, applied in order.
#[derive(Default)]
pub struct TransformChain {
    steps: Vec<TransformStep>,
}

impl TransformChain {
    pub fn new(steps: Vec<TransformStep>) -> Self {
        TransformChain { steps }
    }
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Apply every step to `record`, appending what comes out to `out` (nothing if filtered, several if
    /// split). `out` is the caller's, so the common one-in-one-out case allocates nothing.
    pub fn apply(&self, record: RecordData, out: &mut Vec<RecordData>) -> Result<(), TransformError> {
        self.apply_from(0, record, out)
    }

    fn apply_from(&self, first: usize, mut record: RecordData, out: &mut Vec<RecordData>) -> Result<(), TransformError> {
        for (i, step) in self.steps.iter().enumerate().skip(first) {
            if let Some((predicate, negate)) = &step.predicate {
                if predicate.test(&record) == *negate {
                    continue;
                }
            }
            let outcome = step.transform.apply(&mut record).map_err(|error| TransformError {
                alias: step.alias.clone(),
                class: step.class.clone(),
                error,
            })?;
            match outcome {
                Transformed::Keep => {}
                Transformed::Drop => return Ok(()),
                Transformed::Split(parts) => {
                    for part in parts {
                        self.apply_from(i + 1, part, out)?;
                    }
                    return Ok(());
                }
            }
        }
        out.push(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Value;

    struct Upper;
    impl Transformation for Upper {
        fn config_def(&self) -> ConfigDef {
            ConfigDef::new()
        }
        fn configure(&mut self, _: &Config) -> Result<()> {
            Ok(())
        }
        fn apply(&self, r: &mut RecordData) -> Result<Transformed> {
            match &r.value {
                Value::String(s) => {
                    r.value = Value::String(s.to_uppercase());
                    Ok(Transformed::Keep)
                }
                Value::Array(items) => {
                    Ok(Transformed::Split(items.iter().map(|v| RecordData::new(r.topic.clone(), None, v.clone())).collect()))
                }
                Value::Null => Ok(Transformed::Drop),
                other => Err(ConnectError::data(format!("expected a string, got {}", other.type_name()))),
            }
        }
    }
    struct TopicIs(&'static str);
    impl Predicate for TopicIs {
        fn config_def(&self) -> ConfigDef {
            ConfigDef::new()
        }
        fn configure(&mut self, _: &Config) -> Result<()> {
            Ok(())
        }
        fn test(&self, r: &RecordData) -> bool {
            r.topic == self.0
        }
    }

    fn chain(pred: Option<(Box<dyn Predicate>, bool)>) -> TransformChain {
        TransformChain::new(vec![TransformStep { alias: "up".into(), class: "Upper".into(), transform: Box::new(Upper), predicate: pred }])
    }

    #[test]
    fn keep_drop_split_and_errors() {
        let c = chain(None);
        let mut out = Vec::new();
        c.apply(RecordData::new("t", None, "a".into()), &mut out).unwrap();
        c.apply(RecordData::new("t", None, Value::Null), &mut out).unwrap();
        c.apply(RecordData::new("t", None, Value::Array(vec!["x".into(), "y".into()])), &mut out).unwrap();
        let values: Vec<String> = out.iter().map(|r| r.value.to_string()).collect();
        // Split parts continue with the NEXT step, not the one that split them.
        assert_eq!(values, ["A", "x", "y"]);
        let err = c.apply(RecordData::new("t", None, Value::Int64(1)), &mut out).unwrap_err();
        assert_eq!(err.to_string(), "transform 'up' (Upper) failed: expected a string, got int64");
    }

    #[test]
    fn predicates_and_negation() {
        let mut out = Vec::new();
        chain(Some((Box::new(TopicIs("other")), false))).apply(RecordData::new("t", None, "a".into()), &mut out).unwrap();
        chain(Some((Box::new(TopicIs("other")), true))).apply(RecordData::new("t", None, "b".into()), &mut out).unwrap();
        let values: Vec<String> = out.iter().map(|r| r.value.to_string()).collect();
        assert_eq!(values, ["a", "B"]);
    }
}
