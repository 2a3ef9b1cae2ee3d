use super::{find, put, text_of, with_fields};
use connect_core::transform::{Transformation, Transformed};
use connect_core::{
    Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, Schema, SchemaRef, SchemaType, Struct,
    Validator, Value,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrangle::test_support::{cfg, configured, map, record};
    use connect_core::ErrorKind;

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
}
