//! Records to rows: which columns a record has, their PostgreSQL types, and the COPY text of their values.
//!
//! Column types come from the schema when the record has one (as the JDBC sink maps them) and, beyond the
//! JDBC sink, from the values of schemaless JSON by this rule: integers BIGINT, other numbers DOUBLE
//! PRECISION, strings TEXT, booleans BOOLEAN, bytes BYTEA, objects and arrays JSONB; a null alone says
//! nothing and becomes TEXT only if a table must be created from it.

use crate::config::{PkMode, PostgresSinkConfig};
use connect_core::{logical, ConnectError, Result, Schema, SchemaType, SinkRecord, Value};
use std::borrow::Cow;
use std::fmt::Write as _;

/// A column's PostgreSQL type, as written in DDL.
pub fn column_type(schema: Option<&Schema>, value: &Value) -> &'static str {
    if let Some(s) = schema {
        match s.name.as_deref() {
            Some(logical::TIMESTAMP) => return "TIMESTAMP",
            Some(logical::DATE) => return "DATE",
            Some(logical::TIME) => return "TIME",
            Some(logical::DECIMAL) => return "NUMERIC",
            _ => {}
        }
        return match s.kind {
            SchemaType::Int8 | SchemaType::Int16 => "SMALLINT",
            SchemaType::Int32 => "INTEGER",
            SchemaType::Int64 => "BIGINT",
            SchemaType::Float32 => "REAL",
            SchemaType::Float64 => "DOUBLE PRECISION",
            SchemaType::Boolean => "BOOLEAN",
            SchemaType::String => "TEXT",
            SchemaType::Bytes => "BYTEA",
            SchemaType::Array | SchemaType::Map | SchemaType::Struct => "JSONB",
        };
    }
    match value {
        Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => "BIGINT",
        Value::Float32(_) | Value::Float64(_) => "DOUBLE PRECISION",
        Value::Boolean(_) => "BOOLEAN",
        Value::Bytes(_) => "BYTEA",
        Value::Array(_) | Value::Map(_) | Value::Struct(_) => "JSONB",
        Value::String(_) | Value::Null => "TEXT",
    }
}

/// A column of a row: its name, its type for DDL, and its value, borrowed from the record where it can be
/// (copying every value of every record was a fifth of the sink's time).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell<'a> {
    pub column: Cow<'a, str>,
    pub sql_type: &'static str,
    pub value: Cow<'a, Value>,
    /// The value's logical type, for encoding (a Timestamp is an int64 underneath).
    pub logical: Option<&'static str>,
}

/// What a record asks of its table.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOp {
    /// Insert, upsert or update these cells (key columns first).
    Write,
    /// Delete the row with these key cells (a tombstone with `delete.enabled`).
    Delete,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    pub table: std::sync::Arc<str>,
    pub op: RowOp,
    /// Primary-key cells, in `pk.fields` order.
    pub key: Vec<Cell<'a>>,
    /// The other cells.
    pub values: Vec<Cell<'a>>,
}

impl<'a> Row<'a> {
    /// Column names, key first: rows with the same columns can share one statement.
    pub fn columns(&self) -> impl Iterator<Item = &Cell<'a>> {
        self.key.iter().chain(self.values.iter())
    }

    /// Same table, operation and columns: the two rows can be written by one statement.
    pub fn shares_statement_with(&self, other: &Row<'_>) -> bool {
        self.table == other.table && self.op == other.op && self.columns().map(|c| &c.column).eq(other.columns().map(|c| &c.column))
    }
}

fn logical_of(schema: Option<&Schema>) -> Option<&'static str> {
    match schema.and_then(|s| s.name.as_deref()) {
        Some(logical::TIMESTAMP) => Some(logical::TIMESTAMP),
        Some(logical::DATE) => Some(logical::DATE),
        Some(logical::TIME) => Some(logical::TIME),
        Some(logical::DECIMAL) => Some(logical::DECIMAL),
        _ => None,
    }
}

/// The (name, schema, value) fields of a struct or a schemaless map.
type Field<'a> = (&'a str, Option<&'a Schema>, &'a Value);

static NULL: Value = Value::Null;

fn fields<'a>(schema: Option<&'a Schema>, value: &'a Value, what: &str) -> Result<Vec<Field<'a>>> {
    match (schema, value) {
        (Some(s), Value::Struct(st)) if s.kind == SchemaType::Struct => {
            Ok(s.fields.iter().map(|f| (f.name.as_str(), Some(&*f.schema), st.get(&f.name).unwrap_or(&NULL))).collect())
        }
        (None, Value::Struct(st)) => Ok(st.iter().map(|(k, v)| (k.as_str(), None, v)).collect()),
        (None, Value::Map(entries)) => entries
            .iter()
            .map(|(k, v)| match k {
                Value::String(k) => Ok((k.as_str(), None, v)),
                other => {
                    Err(ConnectError::data(format!("{what}: map keys must be strings to be column names, found {}", other.type_name())))
                }
            })
            .collect(),
        (_, other) => {
            Err(ConnectError::data(format!("{what} must be a struct or a JSON object to be written as a row, found {}", other.type_name())))
        }
    }
}

fn cell<'a>(column: impl Into<Cow<'a, str>>, schema: Option<&Schema>, value: Cow<'a, Value>) -> Cell<'a> {
    Cell { sql_type: column_type(schema, &value), logical: logical_of(schema), column: column.into(), value }
}

/// The row a record becomes, by `pk.mode`, `pk.fields` and `fields.whitelist`. `None`: a tombstone that is
/// not a delete (the JDBC sink refuses those too; here it is a data error for the DLQ).
pub fn row_of<'a>(config: &'a PostgresSinkConfig, record: &'a SinkRecord, table: std::sync::Arc<str>) -> Result<Row<'a>> {
    let data = &record.data;
    let key_schema = data.key_schema.as_deref();
    let value_schema = data.value_schema.as_deref();
    let key = match config.pk_mode {
        PkMode::None => Vec::new(),
        PkMode::Kafka => vec![
            cell(config.pk_fields[0].as_str(), None, Cow::Owned(Value::String(record.original_topic().to_string()))),
            Cell {
                column: Cow::Borrowed(config.pk_fields[1].as_str()),
                sql_type: "INTEGER",
                value: Cow::Owned(Value::Int32(record.original_partition())),
                logical: None,
            },
            cell(config.pk_fields[2].as_str(), None, Cow::Owned(Value::Int64(record.original_offset()))),
        ],
        PkMode::RecordKey => match &data.key {
            Value::Null => return Err(ConnectError::data("pk.mode=record_key, but the record has no key")),
            Value::Struct(_) | Value::Map(_) => {
                let all = fields(key_schema, &data.key, "The record key")?;
                pick(all, &config.pk_fields, "key")?
            }
            primitive => {
                let [name] = config.pk_fields.as_slice() else {
                    return Err(ConnectError::fatal("pk.mode=record_key with a primitive key needs exactly one name in pk.fields"));
                };
                vec![cell(name.as_str(), key_schema, Cow::Borrowed(primitive))]
            }
        },
        PkMode::RecordValue => {
            if data.value.is_null() {
                return Err(ConnectError::data("pk.mode=record_value, but the record has no value"));
            }
            pick(fields(value_schema, &data.value, "The record value")?, &config.pk_fields, "value")?
        }
    };
    if data.value.is_null() {
        if config.delete_enabled {
            return Ok(Row { table, op: RowOp::Delete, key, values: Vec::new() });
        }
        return Err(ConnectError::data(
            "a record with a null value (a tombstone) cannot be written; set delete.enabled=true to delete by key",
        ));
    }
    let key_names: Vec<&str> = key.iter().map(|c| c.column.as_ref()).collect();
    let values = fields(value_schema, &data.value, "The record value")?
        .into_iter()
        .filter(|(name, _, _)| config.fields_whitelist.is_empty() || config.fields_whitelist.iter().any(|w| w == name))
        .filter(|(name, _, _)| !key_names.contains(name))
        .map(|(name, schema, value)| cell(name, schema, Cow::Borrowed(value)))
        .collect();
    Ok(Row { table, op: RowOp::Write, key, values })
}

/// The named fields (all when `names` is empty), in the order of `names`.
fn pick<'a>(all: Vec<Field<'a>>, names: &[String], side: &str) -> Result<Vec<Cell<'a>>> {
    if names.is_empty() {
        return Ok(all.into_iter().map(|(n, s, v)| cell(n, s, Cow::Borrowed(v))).collect());
    }
    names
        .iter()
        .map(|name| {
            let (n, s, v) = all
                .iter()
                .find(|(n, _, _)| n == name)
                .ok_or_else(|| ConnectError::data(format!("pk.fields names '{name}', which the record {side} does not have")))?;
            if v.is_null() {
                return Err(ConnectError::data(format!("primary key field '{name}' is null")));
            }
            Ok(cell(*n, *s, Cow::Borrowed(*v)))
        })
        .collect()
}

/// An identifier as written in SQL: quoted (case kept) or, with `quote.sql.identifiers=never`, as is.
pub fn ident(name: &str, quote: bool) -> String {
    if quote {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

/// Append `text` escaped for COPY's text format.
fn push_escaped(out: &mut String, text: &str) {
    if !text.contains(['\\', '\t', '\n', '\r']) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// The text of a value in PostgreSQL's COPY text format (tab-separated, `\N` for null), appended to `out`.
pub fn copy_text(cell: &Cell, out: &mut String) {
    match (cell.value.as_ref(), cell.logical) {
        (Value::Null, _) => out.push_str("\\N"),
        (Value::Int64(ms), Some(logical::TIMESTAMP)) => match chrono::DateTime::from_timestamp_millis(*ms) {
            Some(t) => {
                let _ = write!(out, "{}", t.format("%Y-%m-%d %H:%M:%S%.3f"));
            }
            None => {
                let _ = write!(out, "{ms}");
            }
        },
        (Value::Int32(days), Some(logical::DATE)) => {
            match chrono::NaiveDate::from_ymd_opt(1970, 1, 1).and_then(|d| d.checked_add_signed(chrono::TimeDelta::days(i64::from(*days))))
            {
                Some(d) => {
                    let _ = write!(out, "{}", d.format("%Y-%m-%d"));
                }
                None => {
                    let _ = write!(out, "{days}");
                }
            }
        }
        (Value::Int32(ms), Some(logical::TIME)) => {
            let ms = i64::from(*ms);
            let _ = write!(out, "{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        }
        // The scale is on the schema, which the cell does not carry; decimals arrive as text via the converter.
        (Value::Bytes(b), Some(logical::DECIMAL)) => push_escaped(out, &String::from_utf8_lossy(b)),
        (Value::Boolean(b), _) => out.push(if *b { 't' } else { 'f' }),
        (Value::String(s), _) => push_escaped(out, s),
        (Value::Bytes(b), _) => {
            out.push_str("\\\\x");
            for byte in b.iter() {
                let _ = write!(out, "{byte:02x}");
            }
        }
        (Value::Float32(f), _) => {
            let _ = write!(out, "{f}");
        }
        (Value::Float64(f), _) => {
            let _ = write!(out, "{f}");
        }
        (v @ (Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_)), _) => {
            let _ = write!(out, "{}", v.as_i64().unwrap_or_default());
        }
        (v @ (Value::Array(_) | Value::Map(_) | Value::Struct(_)), _) => push_escaped(out, &v.to_json().to_string()),
    }
}

/// A value as text for a key comparison (dedup of upserts) and DELETE parameters.
pub fn key_text(cell: &Cell) -> String {
    let mut s = String::new();
    copy_text(cell, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{RecordData, TimestampType};

    fn config(pairs: &[(&str, &str)]) -> PostgresSinkConfig {
        let mut c: connect_core::Config =
            [("connection.url", "postgres://u@h/d")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        c.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        PostgresSinkConfig::parse(&c).unwrap()
    }

    fn row_for<'a>(c: &'a PostgresSinkConfig, r: &'a SinkRecord) -> Result<Row<'a>> {
        row_of(c, r, c.table_name(r.topic()).into())
    }

    fn record(key: Value, value: serde_json::Value) -> SinkRecord {
        let mut data = RecordData::new("TRAIN_MOVEMENTS", None, Value::from_json(&value));
        data.key = key;
        if value.is_null() {
            data.value = Value::Null;
        }
        SinkRecord::new(data, 0, 7, TimestampType::CreateTime)
    }

    #[test]
    fn schemaless_json_rows_by_pk_mode() {
        let c = config(&[("pk.mode", "record_key"), ("pk.fields", "MESSAGE_KEY"), ("delete.enabled", "true")]);
        let r = record(Value::String("k1".into()), serde_json::json!({"n": 1, "x": 1.5, "s": "a\tb", "ok": true, "nested": {"a": [1]}}));
        let row = row_for(&c, &r).unwrap();
        assert_eq!(row.key[0].column, "MESSAGE_KEY");
        let types: Vec<(&str, &str)> = row.values.iter().map(|c| (c.column.as_ref(), c.sql_type)).collect();
        assert_eq!(types, vec![("n", "BIGINT"), ("x", "DOUBLE PRECISION"), ("s", "TEXT"), ("ok", "BOOLEAN"), ("nested", "JSONB")]);
        let mut line = String::new();
        for c in row.columns() {
            copy_text(c, &mut line);
            line.push('|');
        }
        assert_eq!(line, "k1|1|1.5|a\\tb|t|{\"a\":[1]}|");
        let r = record(Value::String("k1".into()), serde_json::Value::Null);
        let tombstone = row_for(&c, &r).unwrap();
        assert_eq!(tombstone.op, RowOp::Delete);

        let (kafka_config, r) = (config(&[("pk.mode", "kafka")]), record(Value::Null, serde_json::json!({"a": 1})));
        let kafka = row_for(&kafka_config, &r).unwrap();
        assert_eq!(kafka.key.iter().map(key_text).collect::<Vec<_>>(), vec!["TRAIN_MOVEMENTS", "0", "7"]);
        let no_delete = config(&[]);
        assert!(row_for(&no_delete, &record(Value::Null, serde_json::Value::Null)).unwrap_err().to_string().contains("tombstone"));
        assert!(row_for(&no_delete, &record(Value::Null, serde_json::json!("just text"))).is_err());
    }

    #[test]
    fn timestamps_are_utc_text() {
        let cell = Cell {
            column: "ts".into(),
            sql_type: "TIMESTAMP",
            value: Cow::Owned(Value::Int64(1_601_991_660_000)),
            logical: Some(logical::TIMESTAMP),
        };
        assert_eq!(key_text(&cell), "2020-10-06 13:41:00.000");
    }
}
