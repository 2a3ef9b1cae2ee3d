//! A file being written: its records encoded as the format says (JSON lines, Avro container, Parquet, raw
//! bytes), gzip where asked. Its bytes are kept in memory until they are cut into parts for the store
//! ([`FileBuilder::take_parts`]) or the file is finished.

use crate::avro::{self, AvroError};
use crate::config::{Compatibility, Format};
use crate::parquet::{ParquetError, ParquetFile, Shredded};
use bytes::Bytes;
use connect_core::{Schema, SchemaRef, SchemaType, SinkRecord, Struct, Value};
use flate2::write::GzEncoder;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, OnceLock};

/// Records a file takes before its Avro values are encoded into a block.
const AVRO_BLOCK_RECORDS: usize = 1000;

/// A record this format cannot write: a data error of that record.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct EncodeError(pub String);

impl From<AvroError> for EncodeError {
    fn from(e: AvroError) -> Self {
        EncodeError(e.0)
    }
}

impl From<ParquetError> for EncodeError {
    fn from(e: ParquetError) -> Self {
        EncodeError(e.0)
    }
}

enum Body {
    Plain(Vec<u8>),
    Gzip(GzEncoder<Vec<u8>>),
}

impl Body {
    fn write(&mut self, bytes: &[u8]) {
        match self {
            Body::Plain(b) => b.extend_from_slice(bytes),
            Body::Gzip(g) => g.write_all(bytes).expect("writing to memory"),
        }
    }
    fn finish(self) -> Vec<u8> {
        match self {
            Body::Plain(b) => b,
            Body::Gzip(g) => g.finish().expect("writing to memory"),
        }
    }
    /// The bytes written out so far (gzip's: compressed, as far as the encoder has emitted them).
    fn output(&mut self) -> &mut Vec<u8> {
        match self {
            Body::Plain(b) => b,
            Body::Gzip(g) => g.get_mut(),
        }
    }
}

/// Move the whole parts of `part_size` at the front of `buffer` to `into`; the rest (less than a part) stays.
/// One copy of the rest; the parts share one allocation.
fn cut_parts(buffer: &mut Vec<u8>, part_size: usize, into: &mut VecDeque<Bytes>) {
    if buffer.len() < part_size {
        return;
    }
    let mut rest = buffer.split_off(buffer.len() / part_size * part_size);
    // The file goes on growing to the next part: room for it now saves doubling reallocations on the way.
    rest.reserve(part_size + part_size / 8);
    push_parts(Bytes::from(std::mem::replace(buffer, rest)), part_size, into);
}

/// Move the whole parts of `part_size` at the front of `bytes` to `into`, without copying; returns the rest.
pub fn push_parts(bytes: Bytes, part_size: usize, into: &mut VecDeque<Bytes>) -> Bytes {
    let whole = bytes.len() / part_size;
    into.extend((0..whole).map(|i| bytes.slice(i * part_size..(i + 1) * part_size)));
    bytes.slice(whole * part_size..)
}

/// The Avro side of a file: its schema (from the first record) and the values not yet encoded.
struct AvroFile {
    schema: apache_avro::Schema,
    codec: apache_avro::Codec,
    marker: [u8; 16],
    header_written: bool,
    pending: Vec<apache_avro::types::Value>,
}

pub struct FileBuilder {
    format: Format,
    body: Body,
    avro: Option<AvroFile>,
    /// The Parquet side of a file, made with its first record's schema.
    parquet: Option<ParquetFile>,
    /// The Avro sync marker, from the object key.
    marker: [u8; 16],
    /// The schema of the file's first record (`None`: schemaless); a record with another starts a new file.
    schema: Option<Option<SchemaRef>>,
    records: usize,
    part_size: usize,
}

/// What the file needs of a record: the value's schema as the file will record it, and the value (the record's
/// own, borrowed, unless an inferred schema made it anew).
pub struct Prepared<'a> {
    schema: Option<SchemaRef>,
    value: Cow<'a, Value>,
    /// JSON lines only: the value goes inside `{"<name>": ...}` (Confluent envelopes headers so).
    envelope: Option<&'static str>,
}

impl Prepared<'_> {
    /// The schema the file will record.
    #[cfg(test)]
    pub fn schema(&self) -> Option<&SchemaRef> {
        self.schema.as_ref()
    }
}

/// A record encoded for a file, not yet in it: encoding can fail, adding cannot, so a record goes into its
/// data, keys and headers files all or not at all.
pub struct Encoded {
    schema: Option<SchemaRef>,
    data: EncodedData,
}

enum EncodedData {
    Bytes(Vec<u8>),
    Avro(apache_avro::types::Value),
    Parquet(Shredded),
}

/// The schema of a headers file's records: an array of `{key, value}` strings, as Confluent's `HeaderRecordView`.
fn headers_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let string = Arc::new(Schema::new(SchemaType::String));
            Arc::new(Schema::array(Arc::new(Schema::structure([("key".to_string(), string.clone()), ("value".to_string(), string)]))))
        })
        .clone()
}

/// The schema of a Parquet headers file's records: `RecordHeaders {headers}`, the same for every record.
fn record_headers_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA.get_or_init(|| Arc::new(Schema::structure([("headers".to_string(), headers_schema())]).named("RecordHeaders"))).clone()
}

impl FileBuilder {
    /// `key`: the object key, from which the Avro sync marker is derived, so a file written again after a crash
    /// has the same bytes.
    /// `part_size`: the store's part size, which also bounds a Parquet row group's buffered bytes.
    pub fn new(format: &Format, gzip: bool, gzip_level: Option<u32>, key: &str, part_size: usize) -> Self {
        // Avro and Parquet compress inside the file (avro.codec, parquet.codec).
        let body = if gzip && matches!(format, Format::Json | Format::ByteArray { .. }) {
            let level = gzip_level.map(flate2::Compression::new).unwrap_or_default();
            Body::Gzip(GzEncoder::new(Vec::new(), level))
        } else {
            Body::Plain(Vec::new())
        };
        let mut marker = [0u8; 16];
        let digest = fnv(key.as_bytes());
        marker[..8].copy_from_slice(&digest.to_le_bytes());
        marker[8..].copy_from_slice(&fnv(&digest.to_le_bytes()).to_le_bytes());
        FileBuilder { format: format.clone(), body, avro: None, parquet: None, marker, schema: None, records: 0, part_size }
    }

    /// The record's value as this format will write it: with Avro and Parquet, a schemaless value gets an
    /// inferred schema.
    pub fn prepare<'a>(format: &Format, record: &'a SinkRecord) -> Result<Prepared<'a>, EncodeError> {
        Self::prepare_value(format, &record.data.value_schema, &record.data.value)
    }

    fn prepare_value<'a>(format: &Format, schema: &Option<SchemaRef>, value: &'a Value) -> Result<Prepared<'a>, EncodeError> {
        match (format, schema) {
            (Format::Avro { .. } | Format::Parquet { .. }, None) => {
                let (schema, value) = avro::infer(value)?;
                Ok(Prepared { schema: Some(schema), value: Cow::Owned(value), envelope: None })
            }
            (_, schema) => Ok(Prepared { schema: schema.clone(), value: Cow::Borrowed(value), envelope: None }),
        }
    }

    /// The record's key for a keys file (`store.kafka.keys`); a record without one is an error, as in Confluent's
    /// sink, which keeps a file's keys aligned with its records. Parquet files hold structs: there the key goes
    /// into a `RecordKey {key}` struct, as Confluent's `KeyRecordView` envelopes it.
    pub fn prepare_key<'a>(format: &Format, record: &'a SinkRecord) -> Result<Prepared<'a>, EncodeError> {
        if record.data.key.is_null() {
            return Err(EncodeError("Key cannot be null for SinkRecord (store.kafka.keys=true writes every record's key)".into()));
        }
        let prepared = Self::prepare_value(format, &record.data.key_schema, &record.data.key)?;
        let Format::Parquet { .. } = format else { return Ok(prepared) };
        // Parquet's key always has a schema: a schemaless key gets an inferred one.
        let key_schema = prepared.schema.ok_or_else(|| EncodeError("no schema".into()))?;
        let schema = Arc::new(Schema::structure([("key".to_string(), key_schema)]).named("RecordKey"));
        Ok(envelope(schema, "key", prepared.value))
    }

    /// The record's headers for a headers file (`store.kafka.headers`): an array of `{key, value}` with the
    /// values as strings (strings as they are, bytes in base64, other values as JSON). No headers, or one without a value, is
    /// an error, as in Confluent's sink.
    pub fn prepare_headers<'a>(format: &Format, record: &'a SinkRecord) -> Result<Prepared<'a>, EncodeError> {
        let headers = &record.data.headers;
        if headers.is_empty() {
            return Err(EncodeError("Headers cannot be null or empty for SinkRecord (store.kafka.headers=true)".into()));
        }
        let mut items = Vec::with_capacity(headers.len());
        for header in headers.iter() {
            if header.value.is_null() {
                return Err(EncodeError(format!("header {:?} has no value; a headers file holds strings", header.key)));
            }
            let mut item = Struct::new();
            item.put("key", Value::String(header.key.clone()));
            // Confluent's Values.convertToString: strings as they are, bytes in base64, the rest as text (JSON).
            let text = match &header.value {
                Value::Bytes(_) => match header.value.to_json() {
                    serde_json::Value::String(base64) => base64,
                    other => other.to_string(),
                },
                other => other.to_string(),
            };
            item.put("value", Value::String(text));
            items.push(Value::Struct(item));
        }
        let value = Cow::Owned(Value::Array(items));
        Ok(match format {
            // Parquet files hold structs: `RecordHeaders {headers}`, as Confluent's `HeaderRecordView` envelopes them.
            Format::Parquet { .. } => envelope(record_headers_schema(), "headers", value),
            _ => Prepared { schema: Some(headers_schema()), value, envelope: matches!(format, Format::Json).then_some("headers") },
        })
    }

    /// Whether a record with this schema may go into this file (Confluent's `schema.compatibility=NONE`, for
    /// every format: the same schema, or both without one).
    pub fn accepts(&self, prepared: &Prepared<'_>) -> bool {
        match &self.schema {
            None => true,
            Some(None) => prepared.schema.is_none(),
            Some(Some(mine)) => prepared.schema.as_ref().is_some_and(|theirs| std::sync::Arc::ptr_eq(mine, theirs) || **mine == **theirs),
        }
    }

    /// The schema of the file's records (`None`: no record yet, or schemaless).
    #[cfg(test)]
    pub fn schema(&self) -> Option<&SchemaRef> {
        self.schema.as_ref().and_then(Option::as_ref)
    }

    /// Whether a record may go into this file, after rewriting it to the file's schema where
    /// `schema.compatibility` says so (Confluent's `StorageSchemaCompatibility`): with BACKWARD or FULL a record of
    /// an older schema version is projected to the file's and a newer one starts a new file (`Ok(false)`); FORWARD
    /// the other way round; NONE, a switch between schemas and none, or schemas without versions, start a new file
    /// on any difference. A record that does not project is an error (the DLQ).
    pub fn fit(&self, prepared: &mut Prepared<'_>, compatibility: Compatibility) -> Result<bool, EncodeError> {
        if self.accepts(prepared) {
            return Ok(true);
        }
        let (Some(Some(mine)), Some(theirs)) = (&self.schema, &prepared.schema) else { return Ok(false) };
        // Without versions to compare (schemas inferred from schemaless values have none) a change of schema starts
        // a new file, as with NONE; Confluent's sink fails the task there.
        let (Some(file_version), Some(record_version)) = (mine.version, theirs.version) else { return Ok(false) };
        let newer_file = match compatibility {
            Compatibility::None => return Ok(false),
            Compatibility::Forward => record_version < file_version,
            Compatibility::Backward | Compatibility::Full => record_version > file_version,
        };
        if newer_file {
            return Ok(false);
        }
        let projected = connect_core::projector::project(theirs, &prepared.value, mine).map_err(|e| {
            EncodeError(format!(
                "the record's schema (version {record_version}) does not project to its file's (version {file_version}): {e}"
            ))
        })?;
        prepared.value = Cow::Owned(projected);
        prepared.schema = Some(mine.clone());
        Ok(true)
    }

    /// Encode a record for this file without adding it (see [`Encoded`]).
    pub fn encode(&mut self, prepared: Prepared<'_>) -> Result<Encoded, EncodeError> {
        let data = match &self.format {
            Format::Json => {
                // `{"<envelope>": value}` written around the value, not built as a JSON tree.
                let mut line = prepared.envelope.map_or_else(Vec::new, |name| format!("{{\"{name}\":").into_bytes());
                serde_json::to_writer(&mut line, &prepared.value.json_view()).map_err(|e| EncodeError(e.to_string()))?;
                if prepared.envelope.is_some() {
                    line.push(b'}');
                }
                line.push(b'\n');
                EncodedData::Bytes(line)
            }
            Format::ByteArray { separator, .. } => {
                let bytes: &[u8] = match &*prepared.value {
                    Value::Bytes(b) => b,
                    Value::String(s) => s.as_bytes(),
                    other => {
                        return Err(EncodeError(format!(
                            "ByteArrayFormat writes bytes; the value is a {} (use ByteArrayConverter)",
                            other.type_name()
                        )))
                    }
                };
                let mut out = Vec::with_capacity(bytes.len() + separator.len());
                out.extend_from_slice(bytes);
                out.extend_from_slice(separator);
                EncodedData::Bytes(out)
            }
            Format::Avro { codec } => {
                let schema = prepared.schema.clone().ok_or_else(|| EncodeError("no schema".into()))?;
                if self.avro.is_none() {
                    let json = avro::avro_schema(&schema);
                    let parsed = apache_avro::Schema::parse(&json)
                        .map_err(|e| EncodeError(format!("the record's schema is not valid Avro: {e}")))?;
                    let codec = match codec.as_str() {
                        "deflate" => apache_avro::Codec::Deflate(Default::default()),
                        "snappy" => apache_avro::Codec::Snappy,
                        "bzip2" => apache_avro::Codec::Bzip2(Default::default()),
                        _ => apache_avro::Codec::Null,
                    };
                    self.avro = Some(AvroFile { schema: parsed, codec, marker: self.marker, header_written: false, pending: Vec::new() });
                }
                let file = self.avro.as_ref().expect("made above");
                let datum = avro::avro_value(&schema, &prepared.value)?;
                if !datum.validate(&file.schema) {
                    return Err(EncodeError("the value does not fit its schema as Avro".into()));
                }
                EncodedData::Avro(datum)
            }
            Format::Parquet { codec } => {
                let schema = prepared.schema.as_deref().ok_or_else(|| EncodeError("no schema".into()))?;
                if self.parquet.is_none() {
                    self.parquet = Some(ParquetFile::new(schema, codec, self.part_size)?);
                }
                EncodedData::Parquet(self.parquet.as_ref().expect("made above").shred(&prepared.value)?)
            }
        };
        Ok(Encoded { schema: prepared.schema, data })
    }

    /// Add an encoded record. An error here (an Avro block that does not encode) leaves the file unusable.
    pub fn push(&mut self, encoded: Encoded) -> Result<(), EncodeError> {
        match encoded.data {
            EncodedData::Bytes(bytes) => self.body.write(&bytes),
            EncodedData::Avro(datum) => {
                let file = self.avro.as_mut().ok_or_else(|| EncodeError("an Avro record for a file without its schema".into()))?;
                file.pending.push(datum);
                if file.pending.len() >= AVRO_BLOCK_RECORDS {
                    self.flush_avro()?;
                }
            }
            EncodedData::Parquet(record) => {
                let file = self.parquet.as_mut().ok_or_else(|| EncodeError("a Parquet record for a file without its schema".into()))?;
                file.push(record)?;
            }
        }
        if self.schema.is_none() {
            self.schema = Some(encoded.schema);
        }
        self.records += 1;
        Ok(())
    }

    pub fn append(&mut self, prepared: Prepared<'_>) -> Result<(), EncodeError> {
        let encoded = self.encode(prepared)?;
        self.push(encoded)
    }

    /// Encode the pending Avro values as one block (with the header first, once).
    fn flush_avro(&mut self) -> Result<(), EncodeError> {
        let Some(file) = self.avro.as_mut() else { return Ok(()) };
        if file.pending.is_empty() && file.header_written {
            return Ok(());
        }
        let mut out = Vec::new();
        {
            let mut writer = apache_avro::Writer::builder()
                .schema(&file.schema)
                .writer(&mut out)
                .codec(file.codec)
                .marker(file.marker)
                .has_header(file.header_written)
                .build();
            writer.extend_from_slice(&file.pending).map_err(|e| EncodeError(format!("Avro: {e}")))?;
            writer.flush().map_err(|e| EncodeError(format!("Avro: {e}")))?;
        }
        file.pending.clear();
        file.header_written = true;
        self.body.write(&out);
        Ok(())
    }

    pub fn records(&self) -> usize {
        self.records
    }

    /// Move the file's bytes written so far, in whole parts of `part_size`, to `into` (records still being
    /// gathered, an Avro block or a Parquet row group, stay until they are encoded).
    pub fn take_parts(&mut self, part_size: usize, into: &mut VecDeque<Bytes>) {
        let output = match &mut self.parquet {
            Some(file) => file.output(),
            None => self.body.output(),
        };
        cut_parts(output, part_size, into);
    }

    /// Bytes the file holds in memory: what is written and not yet taken as parts, and records gathered for
    /// an Avro block (counted as encoded once they are) or a Parquet row group (counted as buffered values).
    #[cfg(test)]
    pub fn buffered_bytes(&mut self) -> usize {
        let gathered = self.parquet.as_ref().map_or(0, ParquetFile::buffered_bytes);
        let output = match &mut self.parquet {
            Some(file) => file.output().len(),
            None => self.body.output().len(),
        };
        output + gathered
    }

    /// The file's bytes not taken as parts yet.
    pub fn finish(mut self) -> Result<Vec<u8>, EncodeError> {
        self.flush_avro()?;
        if let Some(file) = self.parquet.take() {
            return Ok(file.finish()?);
        }
        Ok(self.body.finish())
    }
}

/// A view's value as the one field `field` of a struct of `schema` (Confluent's enveloped record views).
fn envelope<'a>(schema: SchemaRef, field: &str, inner: Cow<'_, Value>) -> Prepared<'a> {
    let mut value = Struct::new();
    value.put(field, inner.into_owned());
    Prepared { schema: Some(schema), value: Cow::Owned(Value::Struct(value)), envelope: None }
}

/// FNV-1a, for a sync marker that depends only on the object key.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{RecordData, TimestampType};

    /// Records of about 300 bytes whose values differ, so compression leaves real bytes to cut.
    fn record(i: usize) -> SinkRecord {
        let schema = Arc::new(
            Schema::structure([
                ("id".to_string(), Arc::new(Schema::new(SchemaType::Int64))),
                ("text".to_string(), Arc::new(Schema::new(SchemaType::String))),
            ])
            .named("Row"),
        );
        let mut value = Struct::new();
        let text: String = (0..40).map(|k| format!("{:x}", (i * 2_654_435_761 + k * 40_503) % 65_521)).collect();
        value.put("id", Value::Int64(i as i64)).put("text", Value::String(text));
        SinkRecord::new(RecordData::new("t", Some(schema), Value::Struct(value)), 0, i as i64, TimestampType::CreateTime)
    }

    /// A file cut into parts while it is written has exactly the bytes of the same file built whole, and holds
    /// less than a part (plus what it gathers for its next Avro block or Parquet row group) between cuts.
    #[test]
    fn a_file_cut_into_parts_while_written_has_the_bytes_of_one_built_whole() {
        let part = 64 * 1024;
        let formats = [
            (Format::Json, false),
            (Format::Json, true),
            (Format::ByteArray { extension: ".bin".into(), separator: b"\n".to_vec() }, false),
            (Format::Avro { codec: "null".into() }, false),
            (Format::Avro { codec: "deflate".into() }, false),
            (Format::Parquet { codec: "snappy".into() }, false),
        ];
        for (format, gzip) in formats {
            let what = format!("{format:?} gzip={gzip}");
            let mut whole = FileBuilder::new(&format, gzip, None, "topics/t/k", part);
            let mut streamed = FileBuilder::new(&format, gzip, None, "topics/t/k", part);
            let mut parts = VecDeque::new();
            let mut peak = 0;
            for i in 0..6000 {
                let mut r = record(i);
                if matches!(format, Format::ByteArray { .. }) {
                    r.data.value = Value::String(format!("{:?}", r.data.value));
                    r.data.value_schema = None;
                }
                whole.append(FileBuilder::prepare(&format, &r).unwrap()).unwrap();
                streamed.append(FileBuilder::prepare(&format, &r).unwrap()).unwrap();
                streamed.take_parts(part, &mut parts);
                peak = peak.max(streamed.buffered_bytes());
            }
            let whole = whole.finish().unwrap();
            assert!(parts.len() >= 8, "{what}: {} bytes made only {} parts", whole.len(), parts.len());
            assert!(parts.iter().all(|p| p.len() == part), "{what}: every part cut is whole");
            let mut joined: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
            joined.extend(streamed.finish().unwrap());
            if let Format::Avro { .. } = format {
                // apache-avro writes the header's metadata from a hash map, in an order that differs between
                // writers: the records and the blocks after the header must match.
                let records = |bytes: &[u8]| -> Vec<apache_avro::types::Value> {
                    apache_avro::Reader::new(bytes).unwrap().map(Result::unwrap).collect()
                };
                assert_eq!(records(&joined), records(&whole), "{what}: the records");
                assert_eq!(records(&joined).len(), 6000);
                assert_eq!(joined.len(), whole.len(), "{what}");
                let marker = &whole[whole.len() - 16..];
                let body = |bytes: &[u8]| bytes.windows(16).position(|w| w == marker).map(|at| bytes[at..].to_vec());
                assert!(body(&joined) == body(&whole), "{what}: the bytes from the header's sync marker on");
            } else {
                assert!(joined == whole, "{what}: {} bytes streamed, {} built whole", joined.len(), whole.len());
            }
            // Avro gathers 1000 records (~300 KB) before it encodes a block; Parquet a row group of up to a part.
            let gathered = match format {
                Format::Avro { .. } => 1000 * 400,
                Format::Parquet { .. } => part,
                _ => 0,
            };
            assert!(peak < part + gathered + 1024, "{what}: {peak} bytes held between cuts");
        }
    }
}
