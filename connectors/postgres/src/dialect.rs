//! Records to rows: which columns a record has, their PostgreSQL types, and the COPY text of their values.
//!
//! Column types come from the schema when the record has one (as the JDBC sink maps them) and, beyond the
//! JDBC sink, from the values of schemaless JSON by this rule: integers BIGINT, other numbers DOUBLE
//! PRECISION, strings TEXT, booleans BOOLEAN, bytes BYTEA, objects and arrays JSONB; a null alone says
//! nothing and becomes TEXT only if a table must be created from it.

use crate::config::{PkMode, PostgresSinkConfig};
use connect_core::{logical, ConnectError, Result, Schema, SchemaType, SinkRecord, Value};
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

/// A column of a row: its name, its type for DDL, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub column: String,
    pub sql_type: &'static str,
    pub value: Value,
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
pub struct Row {
    pub table: String,
    pub op: RowOp,
    /// Primary-key cells, in `pk.fields` order.
    pub key: Vec<Cell>,
    /// The other cells.
    pub values: Vec<Cell>,
}

impl Row {
    /// Column names, key first: rows with the same columns can share one statement.
    pub fn columns(&self) -> impl Iterator<Item = &Cell> {
        self.key.iter().chain(self.values.iter())
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
fn fields(schema: Option<&Schema>, value: &Value, what: &str) -> Result<Vec<(String, Option<Schema>, Value)>> {
    match (schema, value) {
        (Some(s), Value::Struct(st)) if s.kind == SchemaType::Struct => Ok(s
            .fields
            .iter()
            .map(|f| (f.name.clone(), Some((*f.schema).clone()), st.get(&f.name).cloned().unwrap_or(Value::Null)))
            .collect()),
        (None, Value::Struct(st)) => Ok(st.iter().map(|(k, v)| (k.clone(), None, v.clone())).collect()),
        (None, Value::Map(entries)) => entries
            .iter()
            .map(|(k, v)| match k {
                Value::String(k) => Ok((k.clone(), None, v.clone())),
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

fn cell(column: String, schema: Option<&Schema>, value: Value) -> Cell {
    Cell { sql_type: column_type(schema, &value), logical: logical_of(schema), column, value }
}

/// The row a record becomes, by `pk.mode`, `pk.fields` and `fields.whitelist`. `None`: a tombstone that is
/// not a delete (the JDBC sink refuses those too; here it is a data error for the DLQ).
pub fn row_of(config: &PostgresSinkConfig, record: &SinkRecord) -> Result<Row> {
    let data = &record.data;
    let table = config.table_name(&data.topic);
    let key_schema = data.key_schema.as_deref();
    let value_schema = data.value_schema.as_deref();
    let key = match config.pk_mode {
        PkMode::None => Vec::new(),
        PkMode::Kafka => vec![
            cell(config.pk_fields[0].clone(), None, Value::String(record.original_topic().to_string())),
            Cell {
                column: config.pk_fields[1].clone(),
                sql_type: "INTEGER",
                value: Value::Int32(record.original_partition()),
                logical: None,
            },
            cell(config.pk_fields[2].clone(), None, Value::Int64(record.original_offset())),
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
                vec![cell(name.clone(), key_schema, primitive.clone())]
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
    let key_names: Vec<&str> = key.iter().map(|c| c.column.as_str()).collect();
    let values = fields(value_schema, &data.value, "The record value")?
        .into_iter()
        .filter(|(name, _, _)| config.fields_whitelist.is_empty() || config.fields_whitelist.contains(name))
        .filter(|(name, _, _)| !key_names.contains(&name.as_str()))
        .map(|(name, schema, value)| cell(name, schema.as_ref(), value))
        .collect();
    Ok(Row { table, op: RowOp::Write, key, values })
}

/// The named fields (all when `names` is empty), in the order of `names`.
fn pick(all: Vec<(String, Option<Schema>, Value)>, names: &[String], side: &str) -> Result<Vec<Cell>> {
    if names.is_empty() {
        return Ok(all.into_iter().map(|(n, s, v)| cell(n, s.as_ref(), v)).collect());
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
            Ok(cell(n.clone(), s.as_ref(), v.clone()))
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

/// The text of a value in PostgreSQL's COPY text format (tab-separated, `\N` for null), appended to `out`.
pub fn copy_text(cell: &Cell, out: &mut String) {
    let raw = match (&cell.value, cell.logical) {
        (Value::Null, _) => {
            out.push_str("\\N");
            return;
        }
        (Value::Int64(ms), Some(logical::TIMESTAMP)) => match chrono::DateTime::from_timestamp_millis(*ms) {
            Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            None => ms.to_string(),
        },
        (Value::Int32(days), Some(logical::DATE)) => {
            match chrono::NaiveDate::from_ymd_opt(1970, 1, 1).and_then(|d| d.checked_add_signed(chrono::TimeDelta::days(i64::from(*days))))
            {
                Some(d) => d.format("%Y-%m-%d").to_string(),
                None => days.to_string(),
            }
        }
        (Value::Int32(ms), Some(logical::TIME)) => {
            let ms = i64::from(*ms);
            format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
        }
        (Value::Bytes(b), Some(logical::DECIMAL)) => {
            // The scale is on the schema, which the cell does not carry; decimals arrive as text via the converter.
            String::from_utf8_lossy(b).into_owned()
        }
        (Value::Boolean(b), _) => (if *b { "t" } else { "f" }).to_string(),
        (Value::String(s), _) => s.clone(),
        (Value::Bytes(b), _) => {
            let mut hex = String::with_capacity(2 + b.len() * 2);
            hex.push_str("\\x");
            for byte in b.iter() {
                let _ = write!(hex, "{byte:02x}");
            }
            hex
        }
        (Value::Float32(f), _) => f.to_string(),
        (Value::Float64(f), _) => f.to_string(),
        (v @ (Value::Array(_) | Value::Map(_) | Value::Struct(_)), _) => v.to_json().to_string(),
        (v, _) => v.as_i64().map(|i| i.to_string()).unwrap_or_else(|| v.to_json().to_string()),
    };
    for c in raw.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
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
        let row = row_of(
            &c,
            &record(Value::String("k1".into()), serde_json::json!({"n": 1, "x": 1.5, "s": "a\tb", "ok": true, "nested": {"a": [1]}})),
        )
        .unwrap();
        assert_eq!(row.key[0].column, "MESSAGE_KEY");
        let types: Vec<(&str, &str)> = row.values.iter().map(|c| (c.column.as_str(), c.sql_type)).collect();
        assert_eq!(types, vec![("n", "BIGINT"), ("x", "DOUBLE PRECISION"), ("s", "TEXT"), ("ok", "BOOLEAN"), ("nested", "JSONB")]);
        let mut line = String::new();
        for c in row.columns() {
            copy_text(c, &mut line);
            line.push('|');
        }
        assert_eq!(line, "k1|1|1.5|a\\tb|t|{\"a\":[1]}|");
        let tombstone = row_of(&c, &record(Value::String("k1".into()), serde_json::Value::Null)).unwrap();
        assert_eq!(tombstone.op, RowOp::Delete);

        let kafka = row_of(&config(&[("pk.mode", "kafka")]), &record(Value::Null, serde_json::json!({"a": 1}))).unwrap();
        assert_eq!(kafka.key.iter().map(key_text).collect::<Vec<_>>(), vec!["TRAIN_MOVEMENTS", "0", "7"]);
        let no_delete = config(&[]);
        assert!(row_of(&no_delete, &record(Value::Null, serde_json::Value::Null)).unwrap_err().to_string().contains("tombstone"));
        assert!(row_of(&no_delete, &record(Value::Null, serde_json::json!("just text"))).is_err());
    }

    #[test]
    fn timestamps_are_utc_text() {
        let cell =
            Cell { column: "ts".into(), sql_type: "TIMESTAMP", value: Value::Int64(1_601_991_660_000), logical: Some(logical::TIMESTAMP) };
        assert_eq!(key_text(&cell), "2020-10-06 13:41:00.000");
    }
}
