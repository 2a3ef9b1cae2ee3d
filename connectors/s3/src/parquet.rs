//! Connect data as Parquet, the way Confluent's `ParquetFormat` writes it: the Connect schema becomes Avro as
//! AvroData makes it ([`crate::avro`]), and that becomes Parquet as parquet-avro converts it, so readers see the
//! same columns. Structs are groups, optional fields `OPTIONAL`; Date, Time, Timestamp and Decimal annotated;
//! strings `STRING`; lists in parquet-avro's two-level form (`repeated <item> array`), or the three-level form
//! (`repeated group list { element }`) when some list in the schema has optional items (Confluent switches the
//! same way); maps with string keys as `MAP` (`repeated group key_value { key, value }`), maps with other keys
//! as lists of `{key, value}` records, as AvroData writes them. The Avro schema goes into the footer
//! (`parquet.avro.schema`, as parquet-avro writes it), so Avro-aware readers get the Connect types back.
//!
//! Records are shredded into column values with their definition and repetition levels as they come (a record
//! that does not fit its file's schema fails alone), and written a row group at a time.

use crate::avro;
use ::parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical};
use ::parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type};
use ::parquet::file::metadata::KeyValue;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::types::{Type, TypePtr};
use connect_core::{logical, Schema, SchemaType, Value};
use std::sync::Arc;

/// Rows a row group takes before it is written (fewer when [`ROW_GROUP_BYTES`] comes first).
const ROW_GROUP_ROWS: usize = 100_000;
/// Bytes of column values (roughly) a row group takes before it is written.
const ROW_GROUP_BYTES: usize = 64 << 20;

/// A value or schema Parquet cannot take: a data error of its record (or, from writing, of its file).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ParquetError(pub String);

impl From<::parquet::errors::ParquetError> for ParquetError {
    fn from(e: ::parquet::errors::ParquetError) -> Self {
        ParquetError(format!("Parquet: {e}"))
    }
}

/// `parquet.codec` values this build writes, with the file name part Confluent gives each (parquet-mr's
/// `CompressionCodecName` extensions): `none` (no part), `snappy`, `gzip`, `lz4` (Hadoop's framing), `lz4_raw`,
/// `zstd`.
pub fn codec(name: &str) -> Option<(Compression, &'static str)> {
    Some(match name {
        "none" => (Compression::UNCOMPRESSED, ""),
        "snappy" => (Compression::SNAPPY, ".snappy"),
        "gzip" => (Compression::GZIP(Default::default()), ".gz"),
        "lz4" => (Compression::LZ4, ".lz4hadoop"),
        "lz4_raw" => (Compression::LZ4_RAW, ".lz4raw"),
        "zstd" => (Compression::ZSTD(Default::default()), ".zstd"),
        _ => return None,
    })
}

/// The physical kind of a leaf column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Boolean,
    Int32,
    Int64,
    Float,
    Double,
    Binary,
}

/// A schema node with what shredding needs: whether it adds a definition level, and for lists and maps, what
/// repeats below it.
#[derive(Debug)]
enum Node {
    Leaf {
        column: usize,
        optional: bool,
        /// The Connect type its values must have (the column's physical type may take several).
        kind: SchemaType,
    },
    Struct {
        optional: bool,
        fields: Vec<(String, Node)>,
    },
    /// Items repeated below the node (one repeated level, in either list form).
    List {
        optional: bool,
        item: Box<Node>,
    },
    /// Entries repeated below the node: a Parquet `MAP`, or a list of `{key, value}` records.
    Map {
        optional: bool,
        key: Box<Node>,
        value: Box<Node>,
    },
}

impl Node {
    fn optional(&self) -> bool {
        match self {
            Node::Leaf { optional, .. } | Node::Struct { optional, .. } | Node::List { optional, .. } | Node::Map { optional, .. } => {
                *optional
            }
        }
    }

    /// Calls `f` with every leaf column below (or at) this node.
    fn each_column(&self, f: &mut impl FnMut(usize)) {
        match self {
            Node::Leaf { column, .. } => f(*column),
            Node::Struct { fields, .. } => fields.iter().for_each(|(_, n)| n.each_column(f)),
            Node::List { item, .. } => item.each_column(f),
            Node::Map { key, value, .. } => {
                key.each_column(f);
                value.each_column(f);
            }
        }
    }
}

/// One leaf value, as its column stores it.
#[derive(Debug, Clone, PartialEq)]
enum Datum {
    Boolean(bool),
    Int32(i32),
    Int64(i64),
    Float(f32),
    Double(f64),
    Binary(ByteArray),
}

/// One entry of one column for a record: a value (or none, below a null or an empty list) and its levels.
#[derive(Debug)]
struct Cell {
    column: usize,
    def: i16,
    rep: i16,
    datum: Option<Datum>,
}

/// A record shredded into its columns' entries, not yet in the file.
#[derive(Debug)]
pub struct Shredded(Vec<Cell>);

enum Values {
    Boolean(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    Binary(Vec<ByteArray>),
}

/// A leaf column's entries for the row group being built.
struct Column {
    values: Values,
    def: Vec<i16>,
    rep: Vec<i16>,
    max_def: i16,
    max_rep: i16,
}

impl Column {
    fn new(leaf: Leaf, max_def: i16, max_rep: i16) -> Self {
        let values = match leaf {
            Leaf::Boolean => Values::Boolean(Vec::new()),
            Leaf::Int32 => Values::Int32(Vec::new()),
            Leaf::Int64 => Values::Int64(Vec::new()),
            Leaf::Float => Values::Float(Vec::new()),
            Leaf::Double => Values::Double(Vec::new()),
            Leaf::Binary => Values::Binary(Vec::new()),
        };
        Column { values, def: Vec::new(), rep: Vec::new(), max_def, max_rep }
    }

    /// Adds an entry; returns its bytes (roughly), for the row group's size.
    fn push(&mut self, cell: Cell) -> usize {
        self.def.push(cell.def);
        self.rep.push(cell.rep);
        let Some(datum) = cell.datum else { return 4 };
        match (&mut self.values, datum) {
            (Values::Boolean(v), Datum::Boolean(x)) => v.push(x),
            (Values::Int32(v), Datum::Int32(x)) => v.push(x),
            (Values::Int64(v), Datum::Int64(x)) => v.push(x),
            (Values::Float(v), Datum::Float(x)) => v.push(x),
            (Values::Double(v), Datum::Double(x)) => v.push(x),
            (Values::Binary(v), Datum::Binary(x)) => {
                let len = x.len();
                v.push(x);
                return len + 8;
            }
            // The shredder makes each column's datums from its leaf kind.
            _ => unreachable!("a datum of another kind than its column"),
        }
        12
    }

    fn clear(&mut self) {
        self.def.clear();
        self.rep.clear();
        match &mut self.values {
            Values::Boolean(v) => v.clear(),
            Values::Int32(v) => v.clear(),
            Values::Int64(v) => v.clear(),
            Values::Float(v) => v.clear(),
            Values::Double(v) => v.clear(),
            Values::Binary(v) => v.clear(),
        }
    }
}

/// Whether some list in the schema has optional items: then lists take the three-level form (Confluent's
/// `schemaHasArrayOfOptionalItems`, which makes parquet-avro drop its old list structure).
fn has_list_of_optional_items(schema: &Schema) -> bool {
    match schema.kind {
        SchemaType::Struct => schema.fields.iter().any(|f| has_list_of_optional_items(&f.schema)),
        SchemaType::Map => schema.value_schema.as_deref().is_some_and(has_list_of_optional_items),
        SchemaType::Array => schema.key_schema.as_deref().is_some_and(|item| item.optional || has_list_of_optional_items(item)),
        _ => false,
    }
}

/// Builds a file's Parquet types and shredding nodes, collecting its leaf columns.
struct Builder {
    three_level: bool,
    columns: Vec<Column>,
}

impl Builder {
    /// The Parquet type and the shredding node of `schema`, its leaf columns added to `columns`.
    /// `def`/`rep`: the levels above it; `repeated`: it is the repeated item of a two-level list.
    fn build(&mut self, schema: &Schema, name: &str, repeated: bool, def: i16, rep: i16) -> Result<(Node, TypePtr), ParquetError> {
        let optional = schema.optional && !repeated;
        let repetition = if repeated {
            Repetition::REPEATED
        } else if optional {
            Repetition::OPTIONAL
        } else {
            Repetition::REQUIRED
        };
        let def = def + i16::from(optional || repeated);
        let rep = rep + i16::from(repeated);
        let in_field = |e: ParquetError| ParquetError(format!("field {name}: {e}"));
        let group = |logical: Option<LogicalType>, fields: Vec<TypePtr>| -> Result<TypePtr, ParquetError> {
            Ok(Arc::new(Type::group_type_builder(name).with_repetition(repetition).with_logical_type(logical).with_fields(fields).build()?))
        };
        Ok(match schema.kind {
            SchemaType::Struct => {
                if schema.fields.is_empty() {
                    return Err(ParquetError(format!("{name}: a struct without fields cannot be Parquet")));
                }
                let mut fields = Vec::with_capacity(schema.fields.len());
                let mut types = Vec::with_capacity(schema.fields.len());
                for f in &schema.fields {
                    let (node, ty) = self.build(&f.schema, &f.name, false, def, rep).map_err(in_field)?;
                    fields.push((f.name.clone(), node));
                    types.push(ty);
                }
                (Node::Struct { optional, fields }, group(None, types)?)
            }
            SchemaType::Array => {
                let item = schema.key_schema.as_deref().ok_or_else(|| ParquetError(format!("{name}: a list without an item schema")))?;
                let (node, ty) = self.repeated(item, def, rep)?;
                (Node::List { optional, item: Box::new(node) }, group(Some(LogicalType::List), vec![ty])?)
            }
            SchemaType::Map => {
                let no_schema = || ParquetError(format!("{name}: a map without key and value schemas"));
                let key = schema.key_schema.as_deref().ok_or_else(no_schema)?;
                let value = schema.value_schema.as_deref().ok_or_else(no_schema)?;
                if key.kind == SchemaType::String && !key.optional {
                    // parquet-avro's map: `repeated group key_value { required binary key (STRING); value }`.
                    let (key_node, key_ty) = self.build(key, "key", false, def + 1, rep + 1)?;
                    let (value_node, value_ty) = self.build(value, "value", false, def + 1, rep + 1)?;
                    let entries = Arc::new(
                        Type::group_type_builder("key_value")
                            .with_repetition(Repetition::REPEATED)
                            .with_fields(vec![key_ty, value_ty])
                            .build()?,
                    );
                    let node = Node::Map { optional, key: Box::new(key_node), value: Box::new(value_node) };
                    (node, group(Some(LogicalType::Map), vec![entries])?)
                } else {
                    // AvroData writes such a map as an array of `MapEntry` records {key, value}.
                    let entry =
                        Schema::structure([("key".to_string(), Arc::new(key.clone())), ("value".to_string(), Arc::new(value.clone()))]);
                    let (Node::Struct { mut fields, .. }, ty) = self.repeated(&entry, def, rep)? else { unreachable!("a struct schema") };
                    let (_, value_node) = fields.pop().expect("two fields");
                    let (_, key_node) = fields.pop().expect("two fields");
                    let node = Node::Map { optional, key: Box::new(key_node), value: Box::new(value_node) };
                    (node, group(Some(LogicalType::List), vec![ty])?)
                }
            }
            _ => {
                let (physical, logical, leaf) = primitive(schema);
                let mut builder =
                    Type::primitive_type_builder(name, physical).with_repetition(repetition).with_logical_type(logical.clone());
                if let Some(LogicalType::Decimal(d)) = &logical {
                    builder = builder.with_precision(d.precision).with_scale(d.scale);
                }
                self.columns.push(Column::new(leaf, def, rep));
                (Node::Leaf { column: self.columns.len() - 1, optional, kind: schema.kind }, Arc::new(builder.build()?))
            }
        })
    }

    /// A list's repeated part: `repeated <item> array` (two-level), or `repeated group list { <item> element }`
    /// (three-level). Either way the item's entries sit one definition and one repetition level deeper.
    fn repeated(&mut self, item: &Schema, def: i16, rep: i16) -> Result<(Node, TypePtr), ParquetError> {
        if !self.three_level {
            return self.build(item, "array", true, def, rep);
        }
        let (node, element) = self.build(item, "element", false, def + 1, rep + 1)?;
        let list = Type::group_type_builder("list").with_repetition(Repetition::REPEATED).with_fields(vec![element]).build()?;
        Ok((node, Arc::new(list)))
    }
}

/// The physical type, annotation and leaf kind of a primitive schema, as parquet-avro maps AvroData's types.
fn primitive(schema: &Schema) -> (Physical, Option<LogicalType>, Leaf) {
    let name = schema.name.as_deref();
    match schema.kind {
        SchemaType::Boolean => (Physical::BOOLEAN, None, Leaf::Boolean),
        SchemaType::Int32 if name == Some(logical::DATE) => (Physical::INT32, Some(LogicalType::Date), Leaf::Int32),
        SchemaType::Int32 if name == Some(logical::TIME) => (Physical::INT32, Some(LogicalType::time(true, TimeUnit::MILLIS)), Leaf::Int32),
        SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 => (Physical::INT32, None, Leaf::Int32),
        SchemaType::Int64 if name == Some(logical::TIMESTAMP) => {
            (Physical::INT64, Some(LogicalType::timestamp(true, TimeUnit::MILLIS)), Leaf::Int64)
        }
        SchemaType::Int64 => (Physical::INT64, None, Leaf::Int64),
        SchemaType::Float32 => (Physical::FLOAT, None, Leaf::Float),
        SchemaType::Float64 => (Physical::DOUBLE, None, Leaf::Double),
        SchemaType::String => (Physical::BYTE_ARRAY, Some(LogicalType::String), Leaf::Binary),
        SchemaType::Bytes if name == Some(logical::DECIMAL) => {
            // AvroData's precision: the `connect.decimal.precision` parameter, else 64.
            let scale = logical::decimal_scale(schema).unwrap_or(0);
            let precision = schema.parameters.get("connect.decimal.precision").and_then(|p| p.parse().ok()).unwrap_or(64);
            (Physical::BYTE_ARRAY, Some(LogicalType::decimal(scale, precision)), Leaf::Binary)
        }
        _ => (Physical::BYTE_ARRAY, None, Leaf::Binary),
    }
}

/// A record's value as a leaf datum: only a value of the schema's own Connect type (as AvroData checks it), so
/// a string in a decimal or bytes in a string field is the record's error, not a wrong value in the file.
fn datum(kind: SchemaType, value: &Value) -> Option<Datum> {
    Some(match (kind, value) {
        (SchemaType::Boolean, Value::Boolean(b)) => Datum::Boolean(*b),
        (SchemaType::Int8, Value::Int8(v)) => Datum::Int32(i32::from(*v)),
        (SchemaType::Int16, Value::Int16(v)) => Datum::Int32(i32::from(*v)),
        (SchemaType::Int32, Value::Int32(v)) => Datum::Int32(*v),
        (SchemaType::Int64, Value::Int64(v)) => Datum::Int64(*v),
        (SchemaType::Float32, Value::Float32(v)) => Datum::Float(*v),
        (SchemaType::Float64, Value::Float64(v)) => Datum::Double(*v),
        (SchemaType::String, Value::String(s)) => Datum::Binary(ByteArray::from(s.as_bytes().to_vec())),
        // Decimals too: Connect's unscaled big-endian two's complement is Parquet's.
        (SchemaType::Bytes, Value::Bytes(b)) => Datum::Binary(ByteArray::from(b.clone())),
        _ => return None,
    })
}

/// Adds a record's entries below `node` for `value`. `def`: the definition level of the parent; `rep`: the
/// repetition level of the first entry; `depth`: the repeated levels above.
fn shred(node: &Node, value: &Value, def: i16, rep: i16, depth: i16, out: &mut Vec<Cell>) -> Result<(), ParquetError> {
    if value.is_null() {
        if !node.optional() {
            return Err(ParquetError("a null value where the schema does not allow one".into()));
        }
        node.each_column(&mut |column| out.push(Cell { column, def, rep, datum: None }));
        return Ok(());
    }
    let def = def + i16::from(node.optional());
    let mismatch = |expected: &str| ParquetError(format!("a {} value where the schema says {expected}", value.type_name()));
    match node {
        Node::Leaf { column, kind, .. } => {
            let datum = datum(*kind, value).ok_or_else(|| mismatch(kind.json_name()))?;
            out.push(Cell { column: *column, def, rep, datum: Some(datum) });
        }
        Node::Struct { fields, .. } => {
            let Value::Struct(s) = value else { return Err(mismatch("struct")) };
            for (name, child) in fields {
                shred(child, s.get(name).unwrap_or(&Value::Null), def, rep, depth, out)
                    .map_err(|e| ParquetError(format!("field {name}: {e}")))?;
            }
        }
        Node::List { item, .. } => {
            let Value::Array(items) = value else { return Err(mismatch("array")) };
            if items.is_empty() {
                item.each_column(&mut |column| out.push(Cell { column, def, rep, datum: None }));
            }
            for (i, v) in items.iter().enumerate() {
                let rep = if i == 0 { rep } else { depth + 1 };
                shred(item, v, def + 1, rep, depth + 1, out)?;
            }
        }
        Node::Map { key, value: val, .. } => {
            let Value::Map(entries) = value else { return Err(mismatch("map")) };
            if entries.is_empty() {
                let mut none = |column| out.push(Cell { column, def, rep, datum: None });
                key.each_column(&mut none);
                val.each_column(&mut none);
            }
            for (i, (k, v)) in entries.iter().enumerate() {
                let rep = if i == 0 { rep } else { depth + 1 };
                shred(key, k, def + 1, rep, depth + 1, out).map_err(|e| ParquetError(format!("map key: {e}")))?;
                shred(val, v, def + 1, rep, depth + 1, out).map_err(|e| ParquetError(format!("map value: {e}")))?;
            }
        }
    }
    Ok(())
}

/// A Parquet file being written: its schema (from its first record), the row group being built, and the
/// row groups written so far.
pub struct ParquetFile {
    /// The record struct's fields.
    fields: Vec<(String, Node)>,
    columns: Vec<Column>,
    writer: SerializedFileWriter<Vec<u8>>,
    rows: usize,
    bytes: usize,
    /// Buffered bytes at which the row group is written.
    row_group_bytes: usize,
}

impl ParquetFile {
    /// A file for records of `schema` (a struct: Confluent's format writes records), compressed with `codec`
    /// (a `parquet.codec` value [`codec`] knows). A row group is written at [`ROW_GROUP_ROWS`] rows or once its
    /// values hold `row_group_bytes` (at most [`ROW_GROUP_BYTES`]), so the file's memory stays near a part.
    pub fn new(schema: &Schema, codec_name: &str, row_group_bytes: usize) -> Result<Self, ParquetError> {
        if schema.kind != SchemaType::Struct {
            return Err(ParquetError(format!(
                "ParquetFormat writes records whose value is a struct (or a JSON object); this one is {:?}",
                schema.kind
            )));
        }
        let (compression, _) =
            codec(codec_name).ok_or_else(|| ParquetError(format!("{codec_name} is not a Parquet codec of this build")))?;
        if schema.fields.is_empty() {
            return Err(ParquetError("a struct without fields cannot be Parquet".into()));
        }
        let mut builder = Builder { three_level: has_list_of_optional_items(schema), columns: Vec::new() };
        let mut fields = Vec::with_capacity(schema.fields.len());
        let mut types = Vec::with_capacity(schema.fields.len());
        for f in &schema.fields {
            let (node, ty) = builder.build(&f.schema, &f.name, false, 0, 0)?;
            fields.push((f.name.clone(), node));
            types.push(ty);
        }
        // The message is named as parquet-avro names it: the Avro record's full name.
        // (A record is never null here: the top level is no union.)
        let mut record_schema = schema.clone();
        record_schema.optional = false;
        let avro_schema = avro::avro_schema(&record_schema);
        let message_name = match (avro_schema["namespace"].as_str(), avro_schema["name"].as_str()) {
            (Some(ns), Some(n)) => format!("{ns}.{n}"),
            (None, Some(n)) => n.to_string(),
            _ => "record".to_string(),
        };
        let message = Arc::new(Type::group_type_builder(&message_name).with_fields(types).build()?);
        let properties = WriterProperties::builder()
            .set_compression(compression)
            .set_key_value_metadata(Some(vec![
                KeyValue::new("parquet.avro.schema".to_string(), avro_schema.to_string()),
                KeyValue::new("writer.model.name".to_string(), "avro".to_string()),
            ]))
            .build();
        let writer = SerializedFileWriter::new(Vec::new(), message, Arc::new(properties))?;
        Ok(ParquetFile {
            fields,
            columns: builder.columns,
            writer,
            rows: 0,
            bytes: 0,
            row_group_bytes: row_group_bytes.min(ROW_GROUP_BYTES),
        })
    }

    /// A record's entries, checked against the file's schema but not added.
    pub fn shred(&self, value: &Value) -> Result<Shredded, ParquetError> {
        let mut cells = Vec::with_capacity(self.columns.len());
        let Value::Struct(s) = value else {
            return Err(ParquetError(format!("ParquetFormat writes structs; this value is a {}", value.type_name())));
        };
        for (name, node) in &self.fields {
            shred(node, s.get(name).unwrap_or(&Value::Null), 0, 0, 0, &mut cells)
                .map_err(|e| ParquetError(format!("field {name}: {e}")))?;
        }
        Ok(Shredded(cells))
    }

    /// Adds a shredded record; writes the row group when it is full. An error leaves the file unusable.
    pub fn push(&mut self, record: Shredded) -> Result<(), ParquetError> {
        for cell in record.0 {
            self.bytes += self.columns[cell.column].push(cell);
        }
        self.rows += 1;
        if self.rows >= ROW_GROUP_ROWS || self.bytes >= self.row_group_bytes {
            self.write_row_group()?;
        }
        Ok(())
    }

    fn write_row_group(&mut self) -> Result<(), ParquetError> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group()?;
        let mut columns = self.columns.iter_mut();
        while let Some(mut out) = group.next_column()? {
            let column = columns.next().ok_or_else(|| ParquetError("more Parquet columns than leaves".into()))?;
            let def = (column.max_def > 0).then_some(column.def.as_slice());
            let rep = (column.max_rep > 0).then_some(column.rep.as_slice());
            match &column.values {
                Values::Boolean(v) => out.typed::<BoolType>().write_batch(v, def, rep)?,
                Values::Int32(v) => out.typed::<Int32Type>().write_batch(v, def, rep)?,
                Values::Int64(v) => out.typed::<Int64Type>().write_batch(v, def, rep)?,
                Values::Float(v) => out.typed::<FloatType>().write_batch(v, def, rep)?,
                Values::Double(v) => out.typed::<DoubleType>().write_batch(v, def, rep)?,
                Values::Binary(v) => out.typed::<ByteArrayType>().write_batch(v, def, rep)?,
            };
            out.close()?;
            column.clear();
        }
        group.close()?;
        self.rows = 0;
        self.bytes = 0;
        Ok(())
    }

    /// The file's bytes written so far (row groups done), which the caller may take from the front: the writer
    /// counts its offsets itself.
    pub fn output(&mut self) -> &mut Vec<u8> {
        self.writer.flush().expect("writing to memory");
        self.writer.inner_mut()
    }

    /// The values gathered for the row group being built.
    #[cfg(test)]
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// The file's bytes: the last row group and the footer written.
    pub fn finish(mut self) -> Result<Vec<u8>, ParquetError> {
        self.write_row_group()?;
        Ok(self.writer.into_inner()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::parquet::file::reader::{FileReader, SerializedFileReader};
    use connect_core::Struct;

    fn optional(mut schema: Schema) -> SchemaRef {
        schema.optional = true;
        Arc::new(schema)
    }

    fn required(kind: SchemaType) -> SchemaRef {
        Arc::new(Schema::new(kind))
    }

    fn array(item: SchemaRef) -> Schema {
        let mut s = Schema::new(SchemaType::Array);
        s.key_schema = Some(item);
        s
    }

    fn map(key: SchemaRef, value: SchemaRef) -> Schema {
        let mut s = Schema::new(SchemaType::Map);
        s.key_schema = Some(key);
        s.value_schema = Some(value);
        s
    }

    use connect_core::SchemaRef;

    /// The file's schema as Parquet prints it, and its rows as the crate's own reader shows them.
    fn read(bytes: Vec<u8>) -> (String, Vec<String>, SerializedFileReader<bytes::Bytes>) {
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).expect("a Parquet file");
        let mut printed = Vec::new();
        ::parquet::schema::printer::print_schema(&mut printed, reader.metadata().file_metadata().schema());
        let rows = reader.get_row_iter(None).unwrap().map(|r| r.unwrap().to_string()).collect();
        (String::from_utf8(printed).unwrap(), rows, reader)
    }

    /// An INT32 column's values, definition levels and repetition levels (first row group).
    fn int32_column(reader: &SerializedFileReader<bytes::Bytes>, column: usize) -> (Vec<i32>, Vec<i16>, Vec<i16>) {
        let group = reader.get_row_group(0).unwrap();
        let ::parquet::column::reader::ColumnReader::Int32ColumnReader(mut column) = group.get_column_reader(column).unwrap() else {
            panic!("an INT32 column")
        };
        let (mut values, mut def, mut rep) = (Vec::new(), Vec::new(), Vec::new());
        column.read_records(usize::MAX, Some(&mut def), Some(&mut rep), &mut values).unwrap();
        (values, def, rep)
    }

    fn squash(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn a_struct_schema_becomes_parquet_avros_columns_and_the_values_read_back() {
        let mut decimal = logical::decimal(2);
        decimal.parameters.insert("connect.decimal.precision".into(), "9".into());
        let location =
            Schema::structure([("lat".to_string(), required(SchemaType::Float64)), ("lon".to_string(), required(SchemaType::Float64))]);
        let schema = Schema::structure([
            ("id".to_string(), required(SchemaType::String)),
            ("n".to_string(), required(SchemaType::Int8)),
            ("ts".to_string(), optional(logical::timestamp())),
            ("day".to_string(), optional(logical::date())),
            ("price".to_string(), optional(decimal)),
            ("location".to_string(), optional(location)),
            ("stops".to_string(), optional(array(required(SchemaType::Int32)))),
            ("counts".to_string(), optional(map(required(SchemaType::String), required(SchemaType::Int64)))),
            ("by_code".to_string(), optional(map(required(SchemaType::Int32), optional(Schema::new(SchemaType::String))))),
        ])
        .named("io.rail.Movement");
        let mut file = ParquetFile::new(&schema, "snappy", ROW_GROUP_BYTES).unwrap();

        let mut full = Struct::new();
        full.put("id", Value::String("T1".into()));
        full.put("n", Value::Int8(3));
        full.put("ts", Value::Int64(1_700_000_000_000));
        full.put("day", Value::Int32(19_700));
        full.put("price", Value::Bytes(bytes::Bytes::from_static(&[0x30, 0x39]))); // 12345 → 123.45
        let mut at = Struct::new();
        at.put("lat", Value::Float64(51.5));
        at.put("lon", Value::Float64(-0.1));
        full.put("location", Value::Struct(at));
        full.put("stops", Value::Array(vec![Value::Int32(1), Value::Int32(2), Value::Int32(3)]));
        full.put(
            "counts",
            Value::Map(vec![(Value::String("cat".into()), Value::Int64(2)), (Value::String("fox".into()), Value::Int64(1))]),
        );
        full.put("by_code", Value::Map(vec![(Value::Int32(7), Value::String("seven".into())), (Value::Int32(8), Value::Null)]));
        let mut sparse = Struct::new();
        sparse.put("id", Value::String("T2".into()));
        sparse.put("n", Value::Int8(-1));
        sparse.put("stops", Value::Array(vec![]));
        let mut missing_id = Struct::new();
        missing_id.put("n", Value::Int8(0));

        let first = file.shred(&Value::Struct(full)).unwrap();
        let err = file.shred(&Value::Struct(missing_id)).unwrap_err().to_string();
        assert!(err.contains("field id") && err.contains("null"), "{err}");
        let second = file.shred(&Value::Struct(sparse)).unwrap();
        file.push(first).unwrap();
        file.push(second).unwrap();
        let (schema_text, rows, reader) = read(file.finish().unwrap());

        let text = squash(&schema_text);
        for expected in [
            "message io.rail.Movement {",
            "REQUIRED BYTE_ARRAY id (STRING);",
            "REQUIRED INT32 n;",
            "OPTIONAL INT64 ts (TIMESTAMP(MILLIS,true));",
            "OPTIONAL INT32 day (DATE);",
            "OPTIONAL BYTE_ARRAY price (DECIMAL(9,2));",
            "OPTIONAL group location { REQUIRED DOUBLE lat; REQUIRED DOUBLE lon; }",
            "OPTIONAL group stops (LIST) { REPEATED INT32 array; }",
            "OPTIONAL group counts (MAP) { REPEATED group key_value { REQUIRED BYTE_ARRAY key (STRING); REQUIRED INT64 value; } }",
            "OPTIONAL group by_code (LIST) { REPEATED group array { REQUIRED INT32 key; OPTIONAL BYTE_ARRAY value (STRING); } }",
        ] {
            assert!(text.contains(expected), "{expected}\nnot in\n{schema_text}");
        }
        assert_eq!(rows.len(), 2);
        assert!(rows[0].contains("id: \"T1\", n: 3, ts: 2023-11-14 22:13:20.000 +00:00, day: 2023-12-09, price: 123.45"), "{}", rows[0]);
        assert!(rows[0].contains("counts: {\"cat\" -> 2, \"fox\" -> 1}"), "{}", rows[0]);
        assert!(rows[0].contains("location: {lat: 51.5, lon: -1E-1}"), "{}", rows[0]);
        assert!(rows[1].contains("id: \"T2\", n: -1, ts: null") && rows[1].contains("counts: null"), "{}", rows[1]);
        // The two-level lists, by their levels: the crate's row reader shows a legacy list one level deeper
        // than it is (pyarrow reads them as lists of items: the e2e test).
        assert_eq!(int32_column(&reader, 7), (vec![1, 2, 3], vec![2, 2, 2, 1], vec![0, 1, 1, 0]), "stops: [1, 2, 3], then []");
        assert_eq!(int32_column(&reader, 10), (vec![7, 8], vec![2, 2, 0], vec![0, 1, 0]), "by_code's keys, then null");

        let footer = reader.metadata().file_metadata().key_value_metadata().unwrap();
        let avro = footer.iter().find(|kv| kv.key == "parquet.avro.schema").and_then(|kv| kv.value.clone()).unwrap();
        assert!(avro.contains("\"connect.name\":\"io.rail.Movement\""), "{avro}");
        assert_eq!(reader.metadata().row_group(0).column(0).compression(), Compression::SNAPPY);
    }

    #[test]
    fn a_list_of_optional_items_switches_the_file_to_three_level_lists() {
        let schema = Schema::structure([
            ("tags".to_string(), required(SchemaType::String)),
            ("names".to_string(), Arc::new(array(optional(Schema::new(SchemaType::String))))),
            ("nested".to_string(), optional(array(Arc::new(array(required(SchemaType::Int64)))))),
        ]);
        let mut file = ParquetFile::new(&schema, "none", ROW_GROUP_BYTES).unwrap();
        let mut record = Struct::new();
        record.put("tags", Value::String("a".into()));
        record.put("names", Value::Array(vec![Value::String("x".into()), Value::Null, Value::String("y".into())]));
        record.put(
            "nested",
            Value::Array(vec![
                Value::Array(vec![Value::Int64(1), Value::Int64(2)]),
                Value::Array(vec![]),
                Value::Array(vec![Value::Int64(3)]),
            ]),
        );
        let shredded = file.shred(&Value::Struct(record)).unwrap();
        file.push(shredded).unwrap();
        let (schema_text, rows, _) = read(file.finish().unwrap());
        let text = squash(&schema_text);
        assert!(text.contains("message io.confluent.connect.avro.ConnectDefault {"), "{schema_text}");
        assert!(
            text.contains("REQUIRED group names (LIST) { REPEATED group list { OPTIONAL BYTE_ARRAY element (STRING); } }"),
            "{schema_text}"
        );
        assert!(
            text.contains("OPTIONAL group nested (LIST) { REPEATED group list { REQUIRED group element (LIST) { REPEATED group list { REQUIRED INT64 element; } } } }"),
            "{schema_text}"
        );
        assert_eq!(rows, vec!["{tags: \"a\", names: [\"x\", null, \"y\"], nested: [[1, 2], [], [3]]}".to_string()]);
    }

    #[test]
    fn values_that_do_not_fit_are_errors_of_their_record() {
        let schema = Schema::structure([("n".to_string(), required(SchemaType::Int32))]);
        let file = ParquetFile::new(&schema, "zstd", ROW_GROUP_BYTES).unwrap();
        let mut wrong = Struct::new();
        wrong.put("n", Value::String("seven".into()));
        let err = file.shred(&Value::Struct(wrong)).unwrap_err().to_string();
        assert!(err.contains("field n") && err.contains("string"), "{err}");
        assert!(file.shred(&Value::Int32(1)).is_err(), "a record that is not a struct");
        let typed = Schema::structure([
            ("text".to_string(), optional(Schema::new(SchemaType::String))),
            ("small".to_string(), optional(Schema::new(SchemaType::Int8))),
            ("price".to_string(), optional(logical::decimal(2))),
        ]);
        let file = ParquetFile::new(&typed, "snappy", ROW_GROUP_BYTES).unwrap();
        for (field, value) in [
            ("text", Value::Bytes(bytes::Bytes::from_static(b"\xff"))),
            ("small", Value::Int32(1000)),
            ("price", Value::String("12.34".into())),
        ] {
            let mut record = Struct::new();
            record.put(field, value);
            let err = file.shred(&Value::Struct(record)).unwrap_err().to_string();
            assert!(err.contains(&format!("field {field}")), "a value of another type than the schema's is refused: {err}");
        }
        let err = ParquetFile::new(&Schema::new(SchemaType::String), "snappy", ROW_GROUP_BYTES).err().unwrap().to_string();
        assert!(err.contains("struct"), "{err}");
    }

    #[test]
    fn a_full_row_group_is_written_and_the_next_begins() {
        let schema = Schema::structure([
            ("n".to_string(), required(SchemaType::Int64)),
            ("s".to_string(), optional(Schema::new(SchemaType::String))),
        ]);
        let mut file = ParquetFile::new(&schema, "lz4", ROW_GROUP_BYTES).unwrap();
        let rows = ROW_GROUP_ROWS + 10;
        for i in 0..rows {
            let mut record = Struct::new();
            record.put("n", Value::Int64(i as i64));
            if i % 2 == 0 {
                record.put("s", Value::String(format!("r{i}")));
            }
            let shredded = file.shred(&Value::Struct(record)).unwrap();
            file.push(shredded).unwrap();
        }
        let reader = SerializedFileReader::new(bytes::Bytes::from(file.finish().unwrap())).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 2);
        assert_eq!(reader.metadata().file_metadata().num_rows(), rows as i64);
        let last = reader.get_row_iter(None).unwrap().last().unwrap().unwrap().to_string();
        assert_eq!(last, format!("{{n: {}, s: null}}", rows - 1));
    }
}
