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

use crate::fields::{fields_of, fields_or_value, rebuild, FieldList};
use chrono::TimeZone;
use connect_core::transform::{Transformation, Transformed};
use connect_core::{
    logical, schemas, Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, Schema, SchemaRef,
    SchemaType, Struct, Validator, Value,
};

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

// ---------------------------------------------------------------------------------------------------------
// ParseCsv

/// A column type of `ParseCsv`: a primitive type by its Kafka Connect name, or `int`, `long`, `bool`; empty is
/// string.
fn column_type(name: &str) -> Option<SchemaType> {
    match name.trim().to_ascii_lowercase().as_str() {
        "" => Some(SchemaType::String),
        "int" => Some(SchemaType::Int32),
        "long" => Some(SchemaType::Int64),
        "bool" => Some(SchemaType::Boolean),
        other => SchemaType::from_json_name(other)
            .filter(|t| !matches!(t, SchemaType::Bytes | SchemaType::Array | SchemaType::Map | SchemaType::Struct)),
    }
}

/// A cell's text as a value of its column's type.
fn cell_value(kind: SchemaType, text: &str) -> std::result::Result<Value, String> {
    let t = text.trim();
    let bad = |e: &dyn std::fmt::Display| format!("'{text}' is not a valid {kind:?}: {e}");
    Ok(match kind {
        SchemaType::Int8 => Value::Int8(t.parse().map_err(|e| bad(&e))?),
        SchemaType::Int16 => Value::Int16(t.parse().map_err(|e| bad(&e))?),
        SchemaType::Int32 => Value::Int32(t.parse().map_err(|e| bad(&e))?),
        SchemaType::Int64 => Value::Int64(t.parse().map_err(|e| bad(&e))?),
        SchemaType::Float32 => Value::Float32(t.parse().map_err(|e| bad(&e))?),
        SchemaType::Float64 => Value::Float64(t.parse().map_err(|e| bad(&e))?),
        SchemaType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => Value::Boolean(true),
            "false" | "f" | "no" | "n" | "0" => Value::Boolean(false),
            _ => return Err(format!("'{text}' is not a valid Boolean")),
        },
        _ => Value::String(text.to_string()),
    })
}

/// `ParseCsv$Value`: a delimited line (the value, or the string field `field`) becomes a struct with one
/// optional field per declared column (`columns=date,time,name,capacity:int32,...`; the type defaults to
/// string). Empty cells, and cells equal to one of `null.values`, are null.
#[derive(Default)]
pub struct ParseCsv {
    columns: Vec<(String, SchemaType)>,
    schema: Option<SchemaRef>,
    field: Option<String>,
    delimiter: u8,
    quote: u8,
    null_values: Vec<String>,
    allow_extra: bool,
    /// Built once and reset per line: building csv-core's parser (its state machine) per line cost more than
    /// the parsing. (A clone of a fresh csv-core Reader does not parse, hence the lock rather than clones.)
    parser: Option<std::sync::Mutex<csv_core::Reader>>,
}

fn single_byte(key: &str, value: &str) -> Result<u8> {
    let unescaped = if value == "\\t" { "\t" } else { value };
    match unescaped.as_bytes() {
        [b] => Ok(*b),
        _ => Err(ConnectError::fatal(format!("Invalid value {value} for configuration {key}: must be a single ASCII character"))),
    }
}

impl Transformation for ParseCsv {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::required(
                    "columns",
                    ConfigType::List,
                    Importance::High,
                    "Columns in order, each `name` or `name:type` (string, int8, int16, int32, int64, float32, float64, boolean).",
                )
                .validator(Validator::NonEmptyList),
            )
            .define(ConfigKey::new(
                "field",
                ConfigType::String,
                Some(""),
                Importance::Medium,
                "Field holding the line; empty: the whole value is the line. The parsed struct replaces the field.",
            ))
            .define(ConfigKey::new(
                "delimiter",
                ConfigType::String,
                Some(","),
                Importance::Medium,
                "Column delimiter (one character; \\t for tab).",
            ))
            .define(ConfigKey::new("quote", ConfigType::String, Some("\""), Importance::Low, "Quote character (one character)."))
            .define(ConfigKey::new(
                "null.values",
                ConfigType::List,
                Some(""),
                Importance::Low,
                "Cell texts that mean null, besides an empty cell.",
            ))
            .define(
                ConfigKey::new(
                    "extra.columns",
                    ConfigType::String,
                    Some("fail"),
                    Importance::Low,
                    "A line with more cells than columns: fail (a data error) or ignore (the extra cells are dropped).",
                )
                .validator(Validator::OneOf(vec!["fail", "ignore"])),
            )
            .define(ConfigKey::new("schema.name", ConfigType::String, Some(""), Importance::Low, "Name of the struct schema, if any."))
    }

    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.columns = Vec::new();
        for column in parsed.list("columns") {
            let (name, kind) = column.split_once(':').unwrap_or((column.as_str(), "string"));
            let name = name.trim();
            let kind = column_type(kind)
                .ok_or_else(|| ConnectError::fatal(format!("Invalid value {column} for configuration columns: unknown type '{kind}'")))?;
            if name.is_empty() || self.columns.iter().any(|(n, _)| n == name) {
                return Err(ConnectError::fatal(format!("Invalid value {column} for configuration columns: empty or repeated name")));
            }
            self.columns.push((name.to_string(), kind));
        }
        self.field = parsed.optional_string("field").filter(|f| !f.is_empty());
        self.delimiter = single_byte("delimiter", &parsed.string("delimiter"))?;
        self.quote = single_byte("quote", &parsed.string("quote"))?;
        self.null_values = parsed.list("null.values");
        self.allow_extra = parsed.string("extra.columns") == "ignore";
        self.parser = Some(std::sync::Mutex::new(csv_core::ReaderBuilder::new().delimiter(self.delimiter).quote(self.quote).build()));
        let mut schema = Schema::structure(self.columns.iter().map(|(n, t)| (n.clone(), Schema::new(*t).optional().into_ref())));
        schema.name = parsed.optional_string("schema.name").filter(|n| !n.is_empty());
        self.schema = Some(schema.into_ref());
        Ok(())
    }

    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        match &self.field {
            None => {
                if record.value.is_null() {
                    return Ok(Transformed::Keep);
                }
                let parsed = self.parse_line(&text_of(&record.value, "ParseCsv")?)?;
                record.value_schema = self.schema.clone();
                record.value = Value::Struct(parsed);
                Ok(Transformed::Keep)
            }
            Some(field) => with_fields(record, "ParseCsv", |fields| {
                let line = match find(fields, field) {
                    Some((_, _, v)) => text_of(v, &format!("ParseCsv field {field}"))?,
                    None => return Err(ConnectError::data(format!("ParseCsv: the record has no field '{field}'"))),
                };
                let parsed = self.parse_line(&line)?;
                put(fields, field, self.schema.clone().expect("configured"), Value::Struct(parsed));
                Ok(())
            }),
        }
    }
}

impl ParseCsv {
    /// The cells of one line, by RFC 4180 rules.
    fn cells(&self, line: &str) -> Result<Vec<String>> {
        use csv_core::ReadRecordResult;
        let mut parser = self.parser.as_ref().expect("configured").lock().unwrap_or_else(|e| e.into_inner());
        parser.reset();
        let mut input = line.trim_end_matches(['\r', '\n']).as_bytes();
        if input.is_empty() {
            return Err(ConnectError::data("ParseCsv: the line is empty"));
        }
        // Unquoting only shortens a line, so the output never outgrows the input.
        let mut out = vec![0u8; input.len() + 1];
        let mut ends = vec![0usize; self.columns.len() + 1];
        let (mut nout, mut nend) = (0, 0);
        loop {
            let (result, read, written, ended) = parser.read_record(input, &mut out[nout..], &mut ends[nend..]);
            input = &input[read..];
            nout += written;
            nend += ended;
            match result {
                ReadRecordResult::InputEmpty => continue, // the next call, with no input, ends the record
                ReadRecordResult::OutputFull => out.resize(out.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
                ReadRecordResult::Record | ReadRecordResult::End => break,
            }
        }
        let mut cells = Vec::with_capacity(nend);
        let mut start = 0;
        for &end in &ends[..nend] {
            let cell = std::str::from_utf8(&out[start..end]).map_err(|_| ConnectError::data("ParseCsv: the line is not UTF-8"))?;
            cells.push(cell.to_string());
            start = end;
        }
        Ok(cells)
    }

    fn parse_line(&self, line: &str) -> Result<Struct> {
        let cells = self.cells(line)?;
        if cells.len() < self.columns.len() || (cells.len() > self.columns.len() && !self.allow_extra) {
            return Err(ConnectError::data(format!("ParseCsv: expected {} columns, the line has {}", self.columns.len(), cells.len())));
        }
        let mut out = Struct::with_capacity(self.columns.len());
        for ((name, kind), cell) in self.columns.iter().zip(cells.iter().map(String::as_str)) {
            let value = if cell.is_empty() || self.null_values.iter().any(|n| n == cell) {
                Value::Null
            } else {
                cell_value(*kind, cell).map_err(|e| ConnectError::data(format!("ParseCsv: column {name}: {e}")))?
            };
            out.put(name.clone(), value);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------------------
// ParseJson

/// `ParseJson$Value`: a JSON text (the value, or the field `field`) becomes a schemaless structure. With a
/// field, the whole value becomes schemaless (JSON has no schema to give the parsed part).
#[derive(Default)]
pub struct ParseJson {
    field: Option<String>,
}

fn parse_json_text(text: &str, what: &str) -> Result<Value> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| ConnectError::data(format!("{what}: not valid JSON: {e}")))?;
    Ok(Value::from_json(&json))
}

impl Transformation for ParseJson {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new().define(ConfigKey::new(
            "field",
            ConfigType::String,
            Some(""),
            Importance::Medium,
            "Field holding the JSON text; empty: the whole value is the text.",
        ))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        self.field = self.config_def().parse(config)?.optional_string("field").filter(|f| !f.is_empty());
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        if record.value.is_null() {
            return Ok(Transformed::Keep);
        }
        match &self.field {
            None => {
                let parsed = parse_json_text(&text_of(&record.value, "ParseJson")?, "ParseJson")?;
                record.value_schema = None;
                record.value = parsed;
            }
            Some(field) => {
                let (mut fields, schemaless_struct) = take_fields(record, "ParseJson")?;
                let what = format!("ParseJson field {field}");
                let parsed = match fields.iter().position(|(n, _, _)| n == field) {
                    None => Err(ConnectError::data(format!("ParseJson: the record has no field '{field}'"))),
                    Some(i) if fields[i].2.is_null() => Ok(None),
                    Some(i) => text_of(&fields[i].2, &what).and_then(|t| parse_json_text(&t, &what)).map(|v| Some((i, v))),
                };
                match parsed {
                    Err(e) => {
                        put_back(record, fields, schemaless_struct);
                        return Err(e);
                    }
                    Ok(Some((i, v))) => fields[i].2 = v,
                    Ok(None) => {}
                }
                record.value_schema = None;
                record.value = rebuild(None, fields.into_iter().map(|(n, _, v)| (n, None, to_schemaless(v))).collect()).1;
            }
        }
        Ok(Transformed::Keep)
    }
}

/// A struct (and structs inside it) as schemaless maps.
fn to_schemaless(value: Value) -> Value {
    match value {
        Value::Struct(s) => Value::Map(s.iter().map(|(k, v)| (Value::String(k.clone()), to_schemaless(v.clone()))).collect()),
        Value::Array(items) => Value::Array(items.into_iter().map(to_schemaless).collect()),
        Value::Map(entries) => Value::Map(entries.into_iter().map(|(k, v)| (k, to_schemaless(v))).collect()),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Explode

/// `Explode$Value`: a record whose value is an array (or has an array at the dotted path `field`) becomes one
/// record per element; with `field`, each keeps the rest of the value and has the element in the array's place.
/// An empty array gives no records (`empty=drop`) or the record with null there (`empty=null`).
#[derive(Default)]
pub struct Explode {
    path: Vec<String>,
    keep_empty: bool,
}

impl Transformation for Explode {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::new(
                "field",
                ConfigType::String,
                Some(""),
                Importance::High,
                "Dotted path of the array (a.b.c); empty: the value itself is the array.",
            ))
            .define(
                ConfigKey::new(
                    "empty",
                    ConfigType::String,
                    Some("drop"),
                    Importance::Low,
                    "An empty array: drop the record, or keep it with null.",
                )
                .validator(Validator::OneOf(vec!["drop", "null"])),
            )
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.path = parsed.string("field").split('.').filter(|p| !p.is_empty()).map(str::to_string).collect();
        self.keep_empty = parsed.string("empty") == "null";
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        if record.value.is_null() {
            return Ok(Transformed::Keep);
        }
        let item_schema = array_at(&record.value_schema, &record.value, &self.path)?;
        // Take the array out of the value, so each output copies only the rest of it (not every element again).
        let Value::Array(items) = std::mem::take(slot_mut(&mut record.value, &self.path).expect("array_at found it")) else {
            unreachable!("array_at checked it is an array")
        };
        let rest = std::mem::take(&mut record.value);
        let one = |item: Value| -> Result<RecordData> {
            let (schema, value) = replace_at(&record.value_schema, rest.clone(), &self.path, item_schema.clone(), item)?;
            Ok(RecordData { value_schema: schema, value, ..record.clone() })
        };
        let keep_null = items.is_empty() && self.keep_empty;
        let outputs: Result<Vec<RecordData>> =
            if keep_null { one(Value::Null).map(|r| vec![r]) } else { items.iter().map(|item| one(item.clone())).collect() };
        match outputs {
            Err(e) => {
                // Leave the record as it was, for the DLQ.
                record.value = rest;
                *slot_mut(&mut record.value, &self.path).expect("still there") = Value::Array(items);
                Err(e)
            }
            Ok(mut out) if keep_null => {
                *record = out.pop().expect("one output");
                Ok(Transformed::Keep)
            }
            Ok(out) => Ok(Transformed::Split(out)),
        }
    }
}

/// The array at `path` (and its item schema).
/// Check that there is an array at `path`; its item schema.
fn array_at(schema: &Option<SchemaRef>, value: &Value, path: &[String]) -> Result<Option<SchemaRef>> {
    let Some((head, rest)) = path.split_first() else {
        return match value {
            Value::Array(_) => Ok(schema.as_ref().and_then(|s| s.items().cloned())),
            other => Err(ConnectError::data(format!("Explode: expected an array, found {}", other.type_name()))),
        };
    };
    let inner_schema = schema.as_ref().and_then(|s| s.field(head).map(|f| f.schema.clone()));
    let inner = value.get_field(head).ok_or_else(|| ConnectError::data(format!("Explode: the record has no field '{head}'")))?;
    array_at(&inner_schema, inner, rest)
}

/// What is at `path`, to change in place (the same lookup as [`Value::get_field`], level by level).
fn slot_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let Some((head, rest)) = path.split_first() else { return Some(value) };
    let inner = match value {
        Value::Struct(st) => st.get_mut(head)?,
        Value::Map(entries) => &mut entries.iter_mut().find(|(k, _)| k.as_str() == Some(head.as_str()))?.1,
        _ => return None,
    };
    slot_mut(inner, rest)
}

/// The value with what is at `path` replaced (its schema too, when the value has one).
fn replace_at(
    schema: &Option<SchemaRef>,
    value: Value,
    path: &[String],
    new_schema: Option<SchemaRef>,
    new_value: Value,
) -> Result<(Option<SchemaRef>, Value)> {
    let Some((head, rest)) = path.split_first() else {
        return Ok((new_schema, new_value));
    };
    let mut fields = fields_of(schema, value, "Explode")?;
    let slot = fields.iter_mut().find(|(n, _, _)| n == head).ok_or_else(|| ConnectError::data(format!("Explode: no field '{head}'")))?;
    let (s, v) = replace_at(&slot.1, std::mem::take(&mut slot.2), rest, new_schema, new_value)?;
    slot.1 = if schema.is_some() { Some(s.unwrap_or_else(schemas::optional_string)) } else { None };
    slot.2 = v;
    Ok(rebuild(schema.as_ref(), fields))
}

// ---------------------------------------------------------------------------------------------------------
// ComputeField

/// The output type of `ComputeField`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum OutputType {
    Auto,
    Int64,
    Float64,
    String,
    Boolean,
}

/// `ComputeField$Value`: `field` = the value of `expression` over the value's top-level fields, in the
/// [evalexpr](https://docs.rs/evalexpr) language: arithmetic, comparisons, `&&`/`||`, `if(c, a, b)`,
/// string concatenation with `+`, `str::to_uppercase(s)`, `math::...`. With `field.type=float64` every integer
/// field enters the expression as a float, so `(capacity - empty_places) / capacity * 100` divides as
/// people expect; with other types integers stay integers.
pub struct ComputeField {
    field: String,
    expression: Option<evalexpr::Node>,
    source: String,
    output: OutputType,
}

impl Default for ComputeField {
    fn default() -> Self {
        ComputeField { field: String::new(), expression: None, source: String::new(), output: OutputType::Auto }
    }
}

impl Transformation for ComputeField {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::required("field", ConfigType::String, Importance::High, "Name of the computed field.")
                    .validator(Validator::NonEmptyString),
            )
            .define(
                ConfigKey::required(
                    "expression",
                    ConfigType::String,
                    Importance::High,
                    "Expression over the value's fields (evalexpr syntax).",
                )
                .validator(Validator::NonEmptyString),
            )
            .define(
                ConfigKey::new(
                    // Not `type`: `transforms.<alias>.type` is the transform's class.
                    "field.type",
                    ConfigType::String,
                    Some("auto"),
                    Importance::Medium,
                    "Type of the field: auto (from the result), int64, float64, string or boolean.",
                )
                .validator(Validator::OneOf(vec!["auto", "int64", "float64", "string", "boolean"])),
            )
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.field = parsed.string("field");
        self.source = parsed.string("expression");
        self.expression = Some(
            evalexpr::build_operator_tree(&self.source)
                .map_err(|e| ConnectError::fatal(format!("Invalid value {} for configuration expression: {e}", self.source)))?,
        );
        self.output = match parsed.string("field.type").as_str() {
            "int64" => OutputType::Int64,
            "float64" => OutputType::Float64,
            "string" => OutputType::String,
            "boolean" => OutputType::Boolean,
            _ => OutputType::Auto,
        };
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        use evalexpr::{ContextWithMutableVariables, HashMapContext, Value as E};
        let expression = self.expression.as_ref().expect("configured");
        let floats = self.output == OutputType::Float64;
        with_fields(record, "ComputeField", |fields| {
            let mut context = HashMapContext::new();
            for (name, _, value) in fields.iter() {
                let v = match value {
                    Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => {
                        let i = value.as_i64().expect("integer");
                        if floats {
                            E::Float(i as f64)
                        } else {
                            E::Int(i)
                        }
                    }
                    Value::Float32(f) => E::Float(f64::from(*f)),
                    Value::Float64(f) => E::Float(*f),
                    Value::String(s) => E::String(s.clone()),
                    Value::Boolean(b) => E::Boolean(*b),
                    Value::Null => E::Empty,
                    _ => continue,
                };
                let _ = context.set_value(name.clone(), v);
            }
            let result = expression
                .eval_with_context(&context)
                .map_err(|e| ConnectError::data(format!("ComputeField {}: `{}` failed: {e}", self.field, self.source)))?;
            let (schema, value) = self.typed(result)?;
            put(fields, &self.field, schema, value);
            Ok(())
        })
    }
}

impl ComputeField {
    fn typed(&self, result: evalexpr::Value) -> Result<(SchemaRef, Value)> {
        use evalexpr::Value as E;
        let wrong = |r: &E| {
            ConnectError::data(format!("ComputeField {}: `{}` gave {r}, which is not a {:?}", self.field, self.source, self.output))
        };
        let float = |f: f64| {
            if f.is_finite() {
                Ok(Value::Float64(f))
            } else {
                Err(ConnectError::data(format!("ComputeField {}: `{}` gave {f} (division by zero?)", self.field, self.source)))
            }
        };
        let optional = |kind| Schema::new(kind).optional().into_ref();
        Ok(match (self.output, &result) {
            (_, E::Empty) => (optional(self.auto_kind(&result)), Value::Null),
            (OutputType::Auto | OutputType::Int64, E::Int(i)) => (optional(SchemaType::Int64), Value::Int64(*i)),
            (OutputType::Int64, E::Float(f)) if f.fract() == 0.0 && f.is_finite() => (optional(SchemaType::Int64), Value::Int64(*f as i64)),
            (OutputType::Auto | OutputType::Float64, E::Float(f)) => (optional(SchemaType::Float64), float(*f)?),
            (OutputType::Float64, E::Int(i)) => (optional(SchemaType::Float64), Value::Float64(*i as f64)),
            (OutputType::Auto | OutputType::String, E::String(s)) => (optional(SchemaType::String), Value::String(s.clone())),
            (OutputType::String, other) => (optional(SchemaType::String), Value::String(other.to_string())),
            (OutputType::Auto | OutputType::Boolean, E::Boolean(b)) => (optional(SchemaType::Boolean), Value::Boolean(*b)),
            (_, other) => return Err(wrong(other)),
        })
    }

    fn auto_kind(&self, _result: &evalexpr::Value) -> SchemaType {
        match self.output {
            OutputType::Int64 => SchemaType::Int64,
            OutputType::Float64 => SchemaType::Float64,
            OutputType::Boolean => SchemaType::Boolean,
            OutputType::String | OutputType::Auto => SchemaType::String,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// BuildStruct

/// `BuildStruct$Value`: `field` = a struct of existing fields, `fields=lat=latitude,lon=longitude` (or just
/// `latitude` to keep the name). `remove.sources=true` drops the source fields.
#[derive(Default)]
pub struct BuildStruct {
    field: String,
    parts: Vec<(String, String)>,
    remove_sources: bool,
}

impl Transformation for BuildStruct {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::required("field", ConfigType::String, Importance::High, "Name of the new struct field.")
                    .validator(Validator::NonEmptyString),
            )
            .define(
                ConfigKey::required(
                    "fields",
                    ConfigType::List,
                    Importance::High,
                    "Its fields: `name=source` or `source`, comma-separated.",
                )
                .validator(Validator::NonEmptyList),
            )
            .define(ConfigKey::new("remove.sources", ConfigType::Boolean, Some("false"), Importance::Low, "Drop the source fields."))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.field = parsed.string("field");
        self.parts = parsed
            .list("fields")
            .iter()
            .map(|p| match p.split_once('=') {
                Some((name, source)) => (name.trim().to_string(), source.trim().to_string()),
                None => (p.trim().to_string(), p.trim().to_string()),
            })
            .collect();
        self.remove_sources = parsed.boolean("remove.sources");
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let schemaless = record.value_schema.is_none();
        with_fields(record, "BuildStruct", |fields| {
            let mut parts = Vec::with_capacity(self.parts.len());
            for (name, source) in &self.parts {
                let (_, schema, value) = find(fields, source)
                    .ok_or_else(|| ConnectError::data(format!("BuildStruct {}: the record has no field '{source}'", self.field)))?;
                parts.push((name.clone(), schema.clone(), value.clone()));
            }
            if self.remove_sources {
                fields.retain(|(n, _, _)| !self.parts.iter().any(|(_, s)| s == n));
            }
            let (schema, value) = if schemaless {
                rebuild(None, parts)
            } else {
                let (s, v) = rebuild(Some(&Schema::new(SchemaType::Struct).optional().into_ref()), parts);
                (s, v)
            };
            put(fields, &self.field, schema.unwrap_or_else(schemas::optional_string), value);
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------------------
// ParseTimestamp

/// `ParseTimestamp$Value`: `field` = a Timestamp (epoch ms) from the string in `date.field`, joined with a space
/// to the one in `time.field` when that is set, parsed with the SimpleDateFormat `format` as a local time in
/// `timezone` (an IANA name such as Europe/London; default UTC). A local time that occurs twice (the autumn
/// clock change) is the earlier instant; one that does not occur (the spring gap) is a data error.
pub struct ParseTimestamp {
    field: String,
    date_field: String,
    time_field: Option<String>,
    pattern: String,
    chrono_format: String,
    has_time: bool,
    timezone: chrono_tz::Tz,
    remove_sources: bool,
}

impl Default for ParseTimestamp {
    fn default() -> Self {
        ParseTimestamp {
            field: String::new(),
            date_field: String::new(),
            time_field: None,
            pattern: String::new(),
            chrono_format: String::new(),
            has_time: false,
            timezone: chrono_tz::UTC,
            remove_sources: false,
        }
    }
}

/// SimpleDateFormat letters to a chrono format; `bool`: whether it has a time of day.
fn simple_date_format_to_chrono(pattern: &str) -> std::result::Result<(String, bool), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let (mut out, mut has_time, mut i) = (String::new(), false, 0);
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i += 1;
            if chars.get(i) == Some(&'\'') {
                out.push('\'');
                i += 1;
                continue;
            }
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '%' {
                    out.push_str("%%");
                } else {
                    out.push(chars[i]);
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let spec = match (c, n) {
            ('y', 2) => "%y",
            ('y', _) => "%Y",
            ('M', 1 | 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', _) => "%d",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('a', _) => "%p",
            ('H', _) | ('k', _) => {
                has_time = true;
                "%H"
            }
            ('h', _) | ('K', _) => {
                has_time = true;
                "%I"
            }
            ('m', _) => {
                has_time = true;
                "%M"
            }
            ('s', _) => {
                has_time = true;
                "%S"
            }
            ('S', _) => {
                has_time = true;
                "%3f"
            }
            _ => return Err(format!("the letter '{c}' is not supported (use y M d E a H h k K m s S and quoted text)")),
        };
        out.push_str(spec);
        i += n;
    }
    Ok((out, has_time))
}

impl Transformation for ParseTimestamp {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::required("field", ConfigType::String, Importance::High, "Name of the Timestamp field to write.")
                    .validator(Validator::NonEmptyString),
            )
            .define(
                ConfigKey::required(
                    "date.field",
                    ConfigType::String,
                    Importance::High,
                    "Field with the date (or the whole date-time) text.",
                )
                .validator(Validator::NonEmptyString),
            )
            .define(ConfigKey::new(
                "time.field",
                ConfigType::String,
                Some(""),
                Importance::Medium,
                "Field with the time of day, if separate.",
            ))
            .define(
                ConfigKey::required(
                    "format",
                    ConfigType::String,
                    Importance::High,
                    "SimpleDateFormat pattern of the (joined) text, e.g. yyyy-MM-dd HH:mm.",
                )
                .validator(Validator::NonEmptyString),
            )
            .define(ConfigKey::new(
                "timezone",
                ConfigType::String,
                Some("UTC"),
                Importance::High,
                "IANA time zone of the local time, e.g. Europe/London.",
            ))
            .define(ConfigKey::new("remove.sources", ConfigType::Boolean, Some("false"), Importance::Low, "Drop the date and time fields."))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.field = parsed.string("field");
        self.date_field = parsed.string("date.field");
        self.time_field = parsed.optional_string("time.field").filter(|f| !f.is_empty());
        self.pattern = parsed.string("format");
        let (format, has_time) = simple_date_format_to_chrono(&self.pattern)
            .map_err(|e| ConnectError::fatal(format!("Invalid value {} for configuration format: {e}", self.pattern)))?;
        self.chrono_format = format;
        self.has_time = has_time;
        let tz = parsed.string("timezone");
        self.timezone = tz
            .parse()
            .map_err(|_| ConnectError::fatal(format!("Invalid value {tz} for configuration timezone: not an IANA time zone name")))?;
        self.remove_sources = parsed.boolean("remove.sources");
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        with_fields(record, "ParseTimestamp", |fields| {
            let text_at = |name: &str| -> Result<Option<String>> {
                match find(fields, name) {
                    None => Err(ConnectError::data(format!("ParseTimestamp: the record has no field '{name}'"))),
                    Some((_, _, Value::Null)) => Ok(None),
                    Some((_, _, v)) => text_of(v, &format!("ParseTimestamp field {name}")).map(Some),
                }
            };
            let date = text_at(&self.date_field)?;
            let time = match &self.time_field {
                Some(f) => text_at(f)?,
                None => Some(String::new()),
            };
            let value = match (date, time) {
                (Some(d), Some(t)) => {
                    let text = if self.time_field.is_some() { format!("{} {}", d.trim(), t.trim()) } else { d.trim().to_string() };
                    Value::Int64(self.parse(&text)?)
                }
                _ => Value::Null,
            };
            if self.remove_sources {
                fields.retain(|(n, _, _)| n != &self.date_field && Some(n) != self.time_field.as_ref());
            }
            put(fields, &self.field, logical::timestamp().optional().into_ref(), value);
            Ok(())
        })
    }
}

impl ParseTimestamp {
    fn parse(&self, text: &str) -> Result<i64> {
        let bad = |e: &dyn std::fmt::Display| {
            ConnectError::data(format!("ParseTimestamp: '{text}' does not match the format '{}': {e}", self.pattern))
        };
        let local = if self.has_time {
            chrono::NaiveDateTime::parse_from_str(text, &self.chrono_format).map_err(|e| bad(&e))?
        } else {
            chrono::NaiveDate::parse_from_str(text, &self.chrono_format).map_err(|e| bad(&e))?.and_hms_opt(0, 0, 0).expect("midnight")
        };
        let instant = self.timezone.from_local_datetime(&local).earliest().ok_or_else(|| {
            ConnectError::data(format!("ParseTimestamp: {text} does not exist in {} (a clock change skips it)", self.timezone))
        })?;
        Ok(instant.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::ErrorKind;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn record(value: Value) -> RecordData {
        RecordData { topic: "t".into(), value, ..Default::default() }
    }

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (Value::String(k.to_string()), v.clone())).collect())
    }

    fn configured<T: Transformation + Default>(pairs: &[(&str, &str)]) -> T {
        let mut t = T::default();
        t.configure(&cfg(pairs)).unwrap();
        t
    }

    const CAR_PARK: &str =
        r#"2020-10-06,14:41,Westgate,116,89,Spaces,53.796291,-1.759143,"https://maps.google.com/?daddr=53.796291,-1.759143""#;
    const CAR_PARK_COLUMNS: &str =
        "date,time,name,capacity:int32,empty_places:int32,status,latitude:float64,longitude:float64,directions_url";

    #[test]
    fn parse_csv_types_columns_and_honours_quotes() {
        let t: ParseCsv = configured(&[("columns", CAR_PARK_COLUMNS)]);
        let mut r = record(Value::String(CAR_PARK.into()));
        t.apply(&mut r).unwrap();
        let schema = r.value_schema.clone().unwrap();
        assert_eq!(schema.field("capacity").unwrap().schema.kind, SchemaType::Int32);
        schema.validate_value(&r.value).unwrap();
        assert_eq!(r.value.get_field("capacity"), Some(&Value::Int32(116)));
        assert_eq!(r.value.get_field("latitude"), Some(&Value::Float64(53.796291)));
        assert_eq!(r.value.get_field("directions_url").unwrap().as_str(), Some("https://maps.google.com/?daddr=53.796291,-1.759143"));

        let mut empty_cell = record(Value::String("2020-10-06,14:41,Westgate,,89,Spaces,1,2,x".into()));
        t.apply(&mut empty_cell).unwrap();
        assert_eq!(empty_cell.value.get_field("capacity"), Some(&Value::Null));
    }

    #[test]
    fn parse_csv_bad_lines_are_data_errors_and_leave_the_record() {
        let t: ParseCsv = configured(&[("columns", CAR_PARK_COLUMNS)]);
        for (line, expect) in [
            ("2020-10-06,14:41,Westgate,lots,89,Spaces,1,2,x", "column capacity: 'lots' is not a valid Int32"),
            ("2020-10-06,14:41", "expected 9 columns, the line has 2"),
            ("a,b,c,1,2,s,1,2,x,extra", "expected 9 columns, the line has 10"),
        ] {
            let mut r = record(Value::String(line.into()));
            let e = t.apply(&mut r).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Data);
            assert!(e.to_string().contains(expect), "{e}");
            assert_eq!(r.value, Value::String(line.into()), "the record is left as it was, for the DLQ");
        }
        let mut wrong_shape = record(Value::Int32(3));
        assert_eq!(t.apply(&mut wrong_shape).unwrap_err().kind(), ErrorKind::Data);
        let mut bad = ParseCsv::default();
        assert!(bad.configure(&cfg(&[("columns", "a:decimal")])).unwrap_err().to_string().contains("unknown type 'decimal'"));
        assert!(bad.configure(&cfg(&[("columns", "a,a")])).is_err());
        assert!(bad.configure(&cfg(&[("columns", "a"), ("delimiter", ";;")])).is_err());
        let tabs: ParseCsv = configured(&[("columns", "a,b:boolean"), ("delimiter", "\\t"), ("field", "line")]);
        let mut r = record(map(&[("line", Value::String("x\ttrue".into())), ("other", Value::Int32(1))]));
        tabs.apply(&mut r).unwrap();
        assert_eq!(r.value.get_field("line").unwrap().get_field("b"), Some(&Value::Boolean(true)));
    }

    #[test]
    fn parse_json_whole_value_and_field() {
        let t: ParseJson = configured(&[]);
        let mut r = record(Value::String(r#"[{"a":1},{"a":2}]"#.into()));
        t.apply(&mut r).unwrap();
        assert!(matches!(&r.value, Value::Array(items) if items.len() == 2));
        let t: ParseJson = configured(&[("field", "payload")]);
        let mut r = record(map(&[("payload", Value::String(r#"{"cat":2}"#.into())), ("id", Value::Int32(7))]));
        t.apply(&mut r).unwrap();
        assert_eq!(r.value.get_field("payload").unwrap().get_field("cat").unwrap().as_i64(), Some(2));
        let mut bad = record(map(&[("payload", Value::String("{nope".into()))]));
        let e = t.apply(&mut bad).unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        assert_eq!(bad.value.get_field("payload").unwrap().as_str(), Some("{nope"));
    }

    #[test]
    fn explode_top_level_and_nested_arrays() {
        let t: Explode = configured(&[]);
        let mut r = record(Value::Array(vec![Value::Int32(1), Value::Int32(2), Value::Int32(3)]));
        let Transformed::Split(out) = t.apply(&mut r).unwrap() else { panic!("split expected") };
        assert_eq!(out.iter().map(|r| r.value.clone()).collect::<Vec<_>>(), vec![Value::Int32(1), Value::Int32(2), Value::Int32(3)]);

        let t: Explode = configured(&[("field", "body.movements")]);
        let body = map(&[("movements", Value::Array(vec![Value::String("a".into()), Value::String("b".into())])), ("n", Value::Int32(2))]);
        let mut r = record(map(&[("header", Value::String("h".into())), ("body", body)]));
        let Transformed::Split(out) = t.apply(&mut r).unwrap() else { panic!("split expected") };
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].value.get_field("body").unwrap().get_field("movements").unwrap().as_str(), Some("b"));
        assert_eq!(out[1].value.get_field("header").unwrap().as_str(), Some("h"));

        let mut empty = record(map(&[("body", map(&[("movements", Value::Array(vec![]))]))]));
        assert_eq!(t.apply(&mut empty).unwrap(), Transformed::Split(vec![]));
        let mut not_array = record(map(&[("body", map(&[("movements", Value::Int32(1))]))]));
        assert_eq!(t.apply(&mut not_array).unwrap_err().kind(), ErrorKind::Data);
    }

    #[test]
    fn explode_keeps_schemas() {
        let items = Schema::array(schemas::int64()).into_ref();
        let schema = Schema::structure([("id".to_string(), schemas::string()), ("xs".to_string(), items)]).into_ref();
        let value: Struct =
            [("id".to_string(), Value::String("k".into())), ("xs".to_string(), Value::Array(vec![Value::Int64(5), Value::Int64(6)]))]
                .into_iter()
                .collect();
        let mut r = record(Value::Struct(value));
        r.value_schema = Some(schema);
        let t: Explode = configured(&[("field", "xs")]);
        let Transformed::Split(out) = t.apply(&mut r).unwrap() else { panic!("split expected") };
        let s = out[0].value_schema.clone().unwrap();
        assert_eq!(s.field("xs").unwrap().schema.kind, SchemaType::Int64);
        s.validate_value(&out[0].value).unwrap();
        assert_eq!(out[1].value.get_field("xs"), Some(&Value::Int64(6)));
    }

    #[test]
    fn compute_field_divides_as_people_expect_and_concatenates() {
        let t: ComputeField =
            configured(&[("field", "PCT_FULL"), ("expression", "(capacity - empty_places) / capacity * 100"), ("field.type", "float64")]);
        let mut r = record(map(&[("capacity", Value::Int32(116)), ("empty_places", Value::Int32(89))]));
        t.apply(&mut r).unwrap();
        let pct = r.value.get_field("PCT_FULL").unwrap().as_f64().unwrap();
        assert!((pct - 23.275862068965516).abs() < 1e-9, "{pct}");

        let t: ComputeField = configured(&[("field", "label"), ("expression", r#"name + " (" + status + ")""#)]);
        let mut r = record(map(&[("name", Value::String("Westgate".into())), ("status", Value::String("Spaces".into()))]));
        t.apply(&mut r).unwrap();
        assert_eq!(r.value.get_field("label").unwrap().as_str(), Some("Westgate (Spaces)"));

        let t: ComputeField = configured(&[("field", "pct"), ("expression", "used / capacity"), ("field.type", "float64")]);
        let mut zero = record(map(&[("used", Value::Int32(1)), ("capacity", Value::Int32(0))]));
        let e = t.apply(&mut zero).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Data);
        let mut missing = record(map(&[("used", Value::Int32(1))]));
        assert_eq!(t.apply(&mut missing).unwrap_err().kind(), ErrorKind::Data);
        let mut wrong_types = record(map(&[("used", Value::String("x".into())), ("capacity", Value::Int32(2))]));
        assert_eq!(t.apply(&mut wrong_types).unwrap_err().kind(), ErrorKind::Data);
        let mut bad = ComputeField::default();
        assert!(bad.configure(&cfg(&[("field", "x"), ("expression", "(1 +")])).is_err());
    }

    #[test]
    fn build_struct_from_fields() {
        let t: BuildStruct = configured(&[("field", "LOCATION"), ("fields", "lat=latitude,lon=longitude"), ("remove.sources", "true")]);
        let mut r =
            record(map(&[("latitude", Value::Float64(53.79)), ("longitude", Value::Float64(-1.75)), ("name", Value::String("W".into()))]));
        t.apply(&mut r).unwrap();
        assert_eq!(r.value.to_json(), serde_json::json!({"name": "W", "LOCATION": {"lat": 53.79, "lon": -1.75}}));
        let mut missing = record(map(&[("latitude", Value::Float64(1.0))]));
        assert!(t.apply(&mut missing).unwrap_err().to_string().contains("no field 'longitude'"));
    }

    #[test]
    fn parse_timestamp_in_a_time_zone() {
        let t: ParseTimestamp = configured(&[
            ("field", "TS"),
            ("date.field", "date"),
            ("time.field", "time"),
            ("format", "yyyy-MM-dd HH:mm"),
            ("timezone", "Europe/London"),
        ]);
        let mut r = record(map(&[("date", Value::String("2020-10-06".into())), ("time", Value::String("14:41".into()))]));
        t.apply(&mut r).unwrap();
        // 14:41 BST is 13:41 UTC.
        assert_eq!(r.value.get_field("TS"), Some(&Value::Int64(1_601_991_660_000)));
        let mut winter = record(map(&[("date", Value::String("2020-12-06".into())), ("time", Value::String("14:41".into()))]));
        t.apply(&mut winter).unwrap();
        assert_eq!(winter.value.get_field("TS"), Some(&Value::Int64(1_607_265_660_000)));
        let mut gap = record(map(&[("date", Value::String("2020-03-29".into())), ("time", Value::String("01:30".into()))]));
        assert!(t.apply(&mut gap).unwrap_err().to_string().contains("does not exist"));
        let mut garbage = record(map(&[("date", Value::String("06/10/2020".into())), ("time", Value::String("14:41".into()))]));
        assert_eq!(t.apply(&mut garbage).unwrap_err().kind(), ErrorKind::Data);

        let date_only: ParseTimestamp = configured(&[("field", "d"), ("date.field", "date"), ("format", "dd/MM/yyyy")]);
        let mut r = record(map(&[("date", Value::String("01/01/1970".into()))]));
        date_only.apply(&mut r).unwrap();
        assert_eq!(r.value.get_field("d"), Some(&Value::Int64(0)));
        let mut bad = ParseTimestamp::default();
        let e = bad.configure(&cfg(&[("field", "x"), ("date.field", "d"), ("format", "yyyy"), ("timezone", "Mars/Olympus")])).unwrap_err();
        assert!(e.to_string().contains("not an IANA time zone"), "{e}");
        assert!(bad.configure(&cfg(&[("field", "x"), ("date.field", "d"), ("format", "yyyy-ww")])).is_err());
    }
}
