//! Wrangling transforms that go beyond Kafka Connect: what practitioners otherwise bolt on with ksqlDB or jq,
//! so a connector config alone carries a feed from raw lines to clean, typed records.
//!
//! - `ParseCsv$Value`: a delimited line into a typed struct, by a declared column list (the `csv-core` crate's
//!   quoting rules: RFC 4180);
//! - `ParseJson$Value`: a JSON string (the value or one field) into a schemaless structure;
//! - `Explode$Value`: one record per element of an array (the value itself or a field at a dotted path);
//! - `ComputeField$Value`: a field computed by an expression over the others (the `evalexpr` language);
//! - `BuildStruct$Value`: a struct made of existing fields (`lat=latitude,lon=longitude`);
//! - `ParseTimestamp$Value`: a date (and time) string in a format and an IANA time zone into a Timestamp.
//!
//! All of them work on the record's value, schemaless or with a schema, and turn a record of the wrong
//! shape into a data error (DLQ-able), never a panic.

mod build_struct;
mod compute_field;
mod explode;
mod parse_csv;
mod parse_json;
mod parse_timestamp;

pub use build_struct::BuildStruct;
pub use compute_field::ComputeField;
pub use explode::Explode;
pub use parse_csv::ParseCsv;
pub use parse_json::ParseJson;
pub use parse_timestamp::ParseTimestamp;

// Helpers shared by the transforms (private items of this module, visible to its children).

use crate::fields::{fields_or_value, rebuild, FieldList};
use connect_core::transform::Transformed;
use connect_core::{ConnectError, RecordData, Result, SchemaRef, Value};

fn find<'a>(fields: &'a FieldList, name: &str) -> Option<&'a (String, Option<SchemaRef>, Value)> {
    fields.iter().find(|(n, _, _)| n == name)
}

fn put(fields: &mut FieldList, name: &str, schema: SchemaRef, value: Value) {
    match fields.iter_mut().find(|(n, _, _)| n == name) {
        Some(slot) => *slot = (name.to_string(), Some(schema), value),
        None => fields.push((name.to_string(), Some(schema), value)),
    }
}

/// Text of a string or UTF-8 bytes value.
fn text_of(value: &Value, what: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|_| ConnectError::data(format!("{what}: the bytes are not UTF-8 text"))),
        other => Err(ConnectError::data(format!("{what}: expected a string, found {}", other.type_name()))),
    }
}

/// The record's value taken apart into fields, without a copy; on a wrong shape the record is left as it was.
/// `bool`: the value was a schemaless struct (which [`put_back`] restores as one, not as a map).
fn take_fields(record: &mut RecordData, smt: &str) -> Result<(FieldList, bool)> {
    let schemaless_struct = record.value_schema.is_none() && matches!(record.value, Value::Struct(_));
    match fields_or_value(&record.value_schema, std::mem::take(&mut record.value), smt) {
        Ok(fields) => Ok((fields, schemaless_struct)),
        Err((e, value)) => {
            record.value = value;
            Err(e)
        }
    }
}

/// Undo [`take_fields`] after a failed step that left the fields unchanged: the record gets its value back.
fn put_back(record: &mut RecordData, fields: FieldList, schemaless_struct: bool) {
    record.value = if schemaless_struct {
        Value::Struct(fields.into_iter().map(|(n, _, v)| (n, v)).collect())
    } else {
        rebuild(record.value_schema.as_ref(), fields).1
    };
}

/// Apply `f` to the record's value as a list of fields, rebuilding the schema (if it had one) afterwards.
/// `f` must leave the fields unchanged when it fails, so the record keeps its value for the DLQ.
fn with_fields(record: &mut RecordData, smt: &str, f: impl FnOnce(&mut FieldList) -> Result<()>) -> Result<Transformed> {
    if record.value.is_null() {
        return Ok(Transformed::Keep); // a tombstone stays a tombstone
    }
    let (mut fields, schemaless_struct) = take_fields(record, smt)?;
    if let Err(e) = f(&mut fields) {
        put_back(record, fields, schemaless_struct);
        return Err(e);
    }
    let (schema, value) = rebuild(record.value_schema.as_ref(), fields);
    record.value_schema = schema;
    record.value = value;
    Ok(Transformed::Keep)
}

/// Helpers shared by the transforms' unit tests.
#[cfg(test)]
mod test_support {
    use connect_core::transform::Transformation;
    use connect_core::{Config, RecordData, Value};

    pub(super) fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    pub(super) fn record(value: Value) -> RecordData {
        RecordData { topic: "t".into(), value, ..Default::default() }
    }

    pub(super) fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (Value::String(k.to_string()), v.clone())).collect())
    }

    pub(super) fn configured<T: Transformation + Default>(pairs: &[(&str, &str)]) -> T {
        let mut t = T::default();
        t.configure(&cfg(pairs)).unwrap();
        t
    }
}
