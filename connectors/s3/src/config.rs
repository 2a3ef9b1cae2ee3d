//! The keys of Confluent's S3 sink (storage-cloud `S3SinkConnectorConfig` and storage-common's
//! `StorageCommonConfig`, `PartitionerConfig`), parsed once at start into [`S3SinkConfig`].

use crate::partitioner::{Extractor, Partitioner, TimePartitioner};
use connect_core::{Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, Result, Validator};
use std::time::Duration;

pub const BUCKET: &str = "s3.bucket.name";
pub const REGION: &str = "s3.region";
pub const STORE_URL: &str = "store.url";
pub const PATH_STYLE: &str = "s3.path.style.access.enabled";
pub const ACCESS_KEY_ID: &str = "aws.access.key.id";
pub const SECRET_ACCESS_KEY: &str = "aws.secret.access.key";
pub const TOPICS_DIR: &str = "topics.dir";
pub const DIRECTORY_DELIM: &str = "directory.delim";
pub const FILE_DELIM: &str = "file.delim";
pub const ZERO_PAD: &str = "filename.offset.zero.pad.width";
pub const FLUSH_SIZE: &str = "flush.size";
pub const ROTATE_INTERVAL: &str = "rotate.interval.ms";
pub const ROTATE_SCHEDULE: &str = "rotate.schedule.interval.ms";
pub const ROTATE_ON_PARTITION_CHANGE: &str = "rotate.file.on.partition.change";
pub const PART_SIZE: &str = "s3.part.size";
pub const COMPRESSION: &str = "s3.compression.type";
pub const COMPRESSION_LEVEL: &str = "s3.compression.level";
pub const AVRO_CODEC: &str = "avro.codec";
pub const PARQUET_CODEC: &str = "parquet.codec";
pub const NULL_VALUES: &str = "behavior.on.null.values";
pub const SCHEMA_COMPATIBILITY: &str = "schema.compatibility";
pub const STORAGE_CLASS: &str = "storage.class";
pub const FORMAT_CLASS: &str = "format.class";
pub const BYTEARRAY_EXTENSION: &str = "format.bytearray.extension";
pub const BYTEARRAY_SEPARATOR: &str = "format.bytearray.separator";
pub const SCHEMA_GENERATOR: &str = "schema.generator.class";
pub const PARTITIONER_CLASS: &str = "partitioner.class";
pub const PARTITION_FIELD: &str = "partition.field.name";
pub const PARTITION_DURATION: &str = "partition.duration.ms";
pub const PATH_FORMAT: &str = "path.format";
pub const LOCALE: &str = "locale";
pub const TIMEZONE: &str = "timezone";
pub const TIMESTAMP_EXTRACTOR: &str = "timestamp.extractor";
pub const TIMESTAMP_FIELD: &str = "timestamp.field";
pub const RETRY_BACKOFF: &str = "s3.retry.backoff.ms";
pub const PART_RETRIES: &str = "s3.part.retries";
pub const SSE_ALGORITHM: &str = "s3.ssea.name";
pub const SSE_KMS_KEY: &str = "s3.sse.kms.key.id";
pub const SSE_CUSTOMER_KEY: &str = "s3.sse.customer.key";
pub const ACL: &str = "s3.acl.canned";
pub const STORE_KEYS: &str = "store.kafka.keys";
pub const STORE_HEADERS: &str = "store.kafka.headers";
pub const KEYS_FORMAT: &str = "keys.format.class";
pub const HEADERS_FORMAT: &str = "headers.format.class";
const AVRO_FORMAT_CLASS: &str = "io.confluent.connect.s3.format.avro.AvroFormat";

/// What a file holds, from `format.class`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// JSON lines (JsonConverter's schemaless form), `.json`, `.json.gz` with gzip.
    Json,
    /// Avro object container files with the records' schema, `.avro`.
    Avro { codec: String },
    /// The raw value bytes, each followed by the separator.
    ByteArray { extension: String, separator: Vec<u8> },
    /// Parquet files of struct records, `.<codec>.parquet` (`parquet.codec`: none, snappy, gzip, lz4, zstd).
    Parquet { codec: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNull {
    Ignore,
    Fail,
}

/// `schema.compatibility`: what a record of another schema version does to the open file (Confluent's
/// `StorageSchemaCompatibility`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compatibility {
    /// Any other schema starts a new file.
    None,
    /// A newer version starts a new file; an older one is projected to the file's schema.
    Backward,
    /// An older version starts a new file; a newer one is projected to the file's schema.
    Forward,
    /// As `Backward`.
    Full,
}

impl std::fmt::Display for Compatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compatibility::None => "NONE",
            Compatibility::Backward => "BACKWARD",
            Compatibility::Forward => "FORWARD",
            Compatibility::Full => "FULL",
        })
    }
}

#[derive(Debug, Clone)]
pub struct S3SinkConfig {
    pub bucket: String,
    pub region: String,
    /// A non-AWS endpoint (SeaweedFS, MinIO, ...).
    pub store_url: Option<String>,
    pub path_style: bool,
    /// `None`: the AWS default credential chain.
    pub credentials: Option<(String, String)>,
    pub topics_dir: String,
    pub directory_delim: String,
    pub file_delim: String,
    pub zero_pad: usize,
    pub flush_size: usize,
    pub compatibility: Compatibility,
    /// Record time (from the extractor) a file may span; `None`: no time rotation.
    pub rotate_interval_ms: Option<i64>,
    /// Wall-clock rotation; `None`: off.
    pub rotate_schedule_ms: Option<i64>,
    pub rotate_on_partition_change: bool,
    pub part_size: usize,
    pub gzip: bool,
    pub gzip_level: Option<u32>,
    pub format: Format,
    pub on_null: OnNull,
    pub partitioner: Partitioner,
    /// `timezone` (UTC when empty): time directories and the scheduled rotation's days.
    pub timezone: chrono_tz::Tz,
    pub retry_backoff: Duration,
    pub part_retries: u32,
    pub sse_algorithm: Option<String>,
    pub sse_kms_key: Option<String>,
    /// `s3.sse.customer.key`: SSE-C, the 256-bit key (base64) S3 encrypts each object with and does not keep.
    pub sse_customer_key: Option<CustomerKey>,
    pub acl: Option<String>,
    /// `store.kafka.keys`: each file gets a `.keys` file beside it, in this format.
    pub keys_format: Option<Format>,
    /// `store.kafka.headers`: each file gets a `.headers` file beside it, in this format.
    pub headers_format: Option<Format>,
}

/// A file beside each data file: its records' keys or headers (Confluent's record views).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Keys,
    Headers,
}

impl Format {
    /// The extension of files in this format.
    pub fn extension(&self, gzip: bool) -> String {
        let gz = if gzip { ".gz" } else { "" };
        match self {
            Format::Json => format!(".json{gz}"),
            Format::Avro { .. } => ".avro".to_string(),
            Format::Parquet { codec } => format!("{}.parquet", crate::parquet::codec(codec).map_or("", |(_, part)| part)),
            Format::ByteArray { extension, .. } => format!("{extension}{gz}"),
        }
    }
}

pub fn def() -> ConfigDef {
    let key = |name: &str, kind, default: Option<&str>, doc: &str| ConfigKey::new(name, kind, default, Importance::Medium, doc);
    ConfigDef::new()
        .define(ConfigKey::required(BUCKET, ConfigType::String, Importance::High, "The bucket objects go to.").validator(Validator::NonEmptyString))
        .define(key(REGION, ConfigType::String, Some("us-west-2"), "The bucket's region."))
        .define(key(STORE_URL, ConfigType::String, Some(""), "The S3 endpoint, for a store that is not AWS (MinIO, SeaweedFS, ...)."))
        .define(key(PATH_STYLE, ConfigType::Boolean, Some("true"), "Path-style addressing (bucket in the path, not the host name)."))
        .define(key(ACCESS_KEY_ID, ConfigType::String, Some(""), "Access key; empty: the AWS default credential chain."))
        .define(key(SECRET_ACCESS_KEY, ConfigType::Password, Some(""), "Secret key, with aws.access.key.id."))
        .define(ConfigKey::required(FLUSH_SIZE, ConfigType::Int, Importance::High, "Records per file: a file is uploaded after this many.").validator(Validator::at_least(1.0)))
        .define(key(TOPICS_DIR, ConfigType::String, Some("topics"), "Top directory of the objects."))
        .define(key(DIRECTORY_DELIM, ConfigType::String, Some("/"), "Directory delimiter of object keys."))
        .define(key(FILE_DELIM, ConfigType::String, Some("+"), "Delimiter between topic, partition and offset in file names."))
        .define(key(ZERO_PAD, ConfigType::Int, Some("10"), "Digits of the start offset in file names (zero-padded).").validator(Validator::at_least(1.0)))
        .define(key(ROTATE_INTERVAL, ConfigType::Long, Some("-1"), "Record time (by the timestamp extractor) a file may span, in ms, with a time-based partitioner; -1: off."))
        .define(key(ROTATE_SCHEDULE, ConfigType::Long, Some("-1"), "Wall-clock rotation period in ms; -1: off. Not exactly once."))
        .define(key(ROTATE_ON_PARTITION_CHANGE, ConfigType::Boolean, Some("true"), "With rotate.interval.ms: a record for another time partition closes the open files."))
        .define(key(PART_SIZE, ConfigType::Int, Some("26214400"), "Bytes per part of a multipart upload (files larger than this are uploaded in parts).").validator(Validator::at_least(5_242_880.0)))
        .define(key(COMPRESSION, ConfigType::String, Some("none"), "none or gzip (JSON and ByteArray files).").validator(Validator::OneOf(vec!["none", "gzip"])))
        .define(key(COMPRESSION_LEVEL, ConfigType::Int, Some("-1"), "gzip level 0-9; -1: the default (6).").validator(Validator::between(-1.0, 9.0)))
        .define(key(AVRO_CODEC, ConfigType::String, Some("null"), "Avro block codec: null, deflate, snappy or bzip2.").validator(Validator::OneOf(vec!["null", "deflate", "snappy", "bzip2"])))
        .define(key(PARQUET_CODEC, ConfigType::String, Some("snappy"), "ParquetFormat's compression: none, snappy, gzip, lz4 (Hadoop's framing), lz4_raw or zstd (brotli and lzo are not built in).").validator(Validator::OneOf(vec!["none", "snappy", "gzip", "lz4", "lz4_raw", "zstd", "brotli", "lzo"])))
        .define(key(NULL_VALUES, ConfigType::String, Some("fail"), "Records with a null value: fail (to the errant-record reporter: the DLQ, or a task failure) or ignore.").validator(Validator::OneOf(vec!["fail", "ignore"])))
        .define(key(SCHEMA_COMPATIBILITY, ConfigType::String, Some("NONE"), "NONE: a record whose schema differs from its file's starts a new file. BACKWARD and FULL: a newer schema version starts a new file, an older one is projected to the file's schema (Kafka Connect's SchemaProjector); FORWARD: the other way round. Between schemas without versions a change starts a new file, as with NONE.").validator(Validator::OneOf(vec!["none", "backward", "forward", "full"])))
        .define(key(STORAGE_CLASS, ConfigType::Class, Some("io.confluent.connect.s3.storage.S3Storage"), "Accepted: S3Storage is the only storage."))
        .define(key(STORE_KEYS, ConfigType::Boolean, Some("false"), "Write each file's record keys to a file beside it (`<name>.keys<ext>`); a record without a key is then an error."))
        .define(key(STORE_HEADERS, ConfigType::Boolean, Some("false"), "Write each file's record headers to a file beside it (`<name>.headers<ext>`), as an array of {key, value} strings; a record without headers is then an error."))
        .define(key(KEYS_FORMAT, ConfigType::Class, Some(AVRO_FORMAT_CLASS), "Format of the keys files: AvroFormat, JsonFormat, ParquetFormat or ByteArrayFormat."))
        .define(key(HEADERS_FORMAT, ConfigType::Class, Some(AVRO_FORMAT_CLASS), "Format of the headers files: AvroFormat, JsonFormat or ParquetFormat."))
        .define(ConfigKey::required(FORMAT_CLASS, ConfigType::Class, Importance::High, "io.confluent.connect.s3.format.json.JsonFormat, ...avro.AvroFormat, ...parquet.ParquetFormat or ...bytearray.ByteArrayFormat."))
        .define(key(BYTEARRAY_EXTENSION, ConfigType::String, Some(".bin"), "Extension of ByteArrayFormat files."))
        .define(key(BYTEARRAY_SEPARATOR, ConfigType::String, Some("\n"), "Bytes after each record in ByteArrayFormat files (taken as written, no escapes)."))
        .define(key(SCHEMA_GENERATOR, ConfigType::Class, Some(""), "Accepted and ignored (Hive schemas are not generated)."))
        .define(key(PARTITIONER_CLASS, ConfigType::Class, Some("io.confluent.connect.storage.partitioner.DefaultPartitioner"), "DefaultPartitioner, FieldPartitioner, TimeBasedPartitioner, HourlyPartitioner or DailyPartitioner (io.confluent.connect.storage.partitioner)."))
        .define(key(PARTITION_FIELD, ConfigType::List, Some(""), "FieldPartitioner: the value fields whose values name the directory."))
        .define(key(PARTITION_DURATION, ConfigType::Long, Some("-1"), "TimeBasedPartitioner: the time span of a directory, in ms."))
        .define(key(PATH_FORMAT, ConfigType::String, Some(""), "TimeBasedPartitioner: a Joda-Time pattern of the directory, e.g. 'year'=YYYY/'month'=MM/'day'=dd."))
        .define(key(LOCALE, ConfigType::String, Some(""), "TimeBasedPartitioner: the pattern's locale (month and day names are English)."))
        .define(key(TIMEZONE, ConfigType::String, Some(""), "TimeBasedPartitioner: the time zone of the directories (an IANA name, or UTC)."))
        .define(key(TIMESTAMP_EXTRACTOR, ConfigType::String, Some("Wallclock"), "Record (the record's timestamp), RecordField (timestamp.field) or Wallclock (not exactly once).").validator(Validator::OneOf(vec!["wallclock", "record", "recordfield"])))
        .define(key(TIMESTAMP_FIELD, ConfigType::String, Some("timestamp"), "RecordField: the value field holding the time (epoch ms, an ISO-8601 string, or a Timestamp)."))
        .define(key(RETRY_BACKOFF, ConfigType::Long, Some("200"), "First wait before an upload is retried; doubling up to a minute, for as long as the store is unreachable.").validator(Validator::at_least(0.0)))
        .define(key(PART_RETRIES, ConfigType::Int, Some("3"), "Retries of a request inside the S3 client before the upload waits and is tried again.").validator(Validator::at_least(0.0)))
        .define(key(SSE_ALGORITHM, ConfigType::String, Some(""), "Server-side encryption: AES256 or aws:kms."))
        .define(key(SSE_KMS_KEY, ConfigType::String, Some(""), "The KMS key with aws:kms."))
        .define(key(SSE_CUSTOMER_KEY, ConfigType::Password, Some(""), "SSE-C: a 256-bit AES key, base64-encoded; S3 encrypts each object with it and keeps only its MD5, so reading an object needs the key too."))
        .define(key(ACL, ConfigType::String, Some(""), "A canned ACL for the objects (private, bucket-owner-full-control, ...)."))
}

/// An SSE-C key as S3 requests carry it: the key and its MD5, both base64.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerKey {
    pub key: String,
    pub md5: String,
}

impl std::fmt::Debug for CustomerKey {
    /// The key is a secret: only its MD5 shows.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomerKey(md5 {})", self.md5)
    }
}

impl CustomerKey {
    /// A base64 256-bit key (what `openssl rand -base64 32` prints).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        use base64::Engine;
        use md5::Digest;
        let engine = base64::engine::general_purpose::STANDARD;
        let bytes = engine.decode(text).map_err(|e| format!("not base64 ({e}); make a key with `openssl rand -base64 32`"))?;
        if bytes.len() != 32 {
            return Err(format!("a 256-bit key is 32 bytes, this one is {} (make one with `openssl rand -base64 32`)", bytes.len()));
        }
        Ok(CustomerKey { key: text.to_string(), md5: engine.encode(md5::Md5::digest(&bytes)) })
    }
}

fn config_error(key: &str, message: impl std::fmt::Display) -> ConnectError {
    ConnectError::fatal(format!("{key}: {message}"))
}

/// The simple name of a class given by its full name or its simple name.
fn simple(class: &str) -> &str {
    class.trim().rsplit('.').next().unwrap_or(class)
}

impl S3SinkConfig {
    pub fn parse(config: &Config) -> Result<Self> {
        let parsed = def().parse(config).map_err(|e| ConnectError::fatal(e.to_string()))?;
        let text = |key: &str| parsed.optional_string(key).unwrap_or_default();
        let trimmed = |key: &str| text(key).trim().to_string();
        let non_empty = |key: &str| Some(trimmed(key)).filter(|v| !v.is_empty());
        let positive = |key: &str| Some(parsed.int(key)).filter(|v| *v > 0);

        let gzip = trimmed(COMPRESSION).eq_ignore_ascii_case("gzip");
        let format_of = |key: &str| -> Result<Format> {
            match simple(&trimmed(key)) {
                "JsonFormat" => Ok(Format::Json),
                "AvroFormat" => {
                    let codec = trimmed(AVRO_CODEC).to_ascii_lowercase();
                    if !matches!(codec.as_str(), "null" | "deflate" | "snappy" | "bzip2") {
                        return Err(config_error(AVRO_CODEC, format!("{codec} is not an Avro codec: null, deflate, snappy or bzip2")));
                    }
                    Ok(Format::Avro { codec })
                }
                // The separator as written (the parsed value is trimmed, which would make "\n" nothing), as
                // Confluent reads it from the original config.
                "ByteArrayFormat" => Ok(Format::ByteArray {
                    extension: text(BYTEARRAY_EXTENSION),
                    separator: config.get(BYTEARRAY_SEPARATOR).cloned().unwrap_or_else(|| "\n".to_string()).into_bytes(),
                }),
                "ParquetFormat" => {
                    let codec = trimmed(PARQUET_CODEC).to_ascii_lowercase();
                    if crate::parquet::codec(&codec).is_none() {
                        return Err(config_error(
                            PARQUET_CODEC,
                            format!("{codec} is not built in: none, snappy, gzip, lz4, lz4_raw or zstd"),
                        ));
                    }
                    Ok(Format::Parquet { codec })
                }
                other => {
                    Err(config_error(key, format!("unknown format {other:?}: JsonFormat, AvroFormat, ParquetFormat or ByteArrayFormat")))
                }
            }
        };
        let format = format_of(FORMAT_CLASS)?;
        // Keys and headers files as Confluent's sink checks them (S3SinkConnectorValidator): no gzip for Avro,
        // and headers only as Avro or JSON.
        let view_format = |store: &str, key: &str| -> Result<Option<Format>> {
            if !parsed.boolean(store) {
                return Ok(None);
            }
            let view = format_of(key)?;
            if gzip && matches!(view, Format::Avro { .. } | Format::Parquet { .. }) {
                return Err(config_error(
                    key,
                    format!("Compression Type gzip not valid for {} format class: ( AvroFormat, ParquetFormat ).", key),
                ));
            }
            if key == HEADERS_FORMAT && matches!(view, Format::ByteArray { .. }) {
                return Err(config_error(key, "ByteArrayFormat cannot write headers (as in Confluent's sink): AvroFormat or JsonFormat"));
            }
            Ok(Some(view))
        };
        let keys_format = view_format(STORE_KEYS, KEYS_FORMAT)?;
        let headers_format = view_format(STORE_HEADERS, HEADERS_FORMAT)?;
        if gzip && matches!(format, Format::Avro { .. }) {
            tracing::warn!("{COMPRESSION}=gzip does not apply to AvroFormat (use avro.codec), as in Confluent's sink");
        }
        if gzip && matches!(format, Format::Parquet { .. }) {
            tracing::warn!("{COMPRESSION}=gzip does not apply to ParquetFormat (use parquet.codec), as in Confluent's sink");
        }
        let storage = trimmed(STORAGE_CLASS);
        if simple(&storage) != "S3Storage" {
            return Err(config_error(STORAGE_CLASS, format!("{storage}: only io.confluent.connect.s3.storage.S3Storage")));
        }

        let directory_delim = text(DIRECTORY_DELIM);
        let zone_name = trimmed(TIMEZONE);
        let timezone: chrono_tz::Tz = if zone_name.is_empty() {
            chrono_tz::UTC
        } else {
            zone_name.parse().map_err(|_| config_error(TIMEZONE, format!("{zone_name:?} is not a time zone (e.g. UTC, Europe/London)")))?
        };
        let partitioner = match simple(&trimmed(PARTITIONER_CLASS)) {
            "DefaultPartitioner" => Partitioner::Default,
            "FieldPartitioner" => {
                let fields = parsed.list(PARTITION_FIELD);
                if fields.is_empty() {
                    return Err(config_error(PARTITION_FIELD, "is required with FieldPartitioner"));
                }
                Partitioner::Field { fields, delim: directory_delim.clone() }
            }
            name @ ("TimeBasedPartitioner" | "HourlyPartitioner" | "DailyPartitioner") => {
                let (duration, pattern) = match name {
                    "HourlyPartitioner" => (3_600_000, format!("'year'=YYYY{0}'month'=MM{0}'day'=dd{0}'hour'=HH", directory_delim)),
                    "DailyPartitioner" => (86_400_000, format!("'year'=YYYY{0}'month'=MM{0}'day'=dd", directory_delim)),
                    _ => (parsed.int(PARTITION_DURATION), text(PATH_FORMAT)),
                };
                if duration <= 0 {
                    return Err(config_error(PARTITION_DURATION, "must be positive with TimeBasedPartitioner"));
                }
                if pattern.trim().is_empty() {
                    return Err(config_error(PATH_FORMAT, "is required with TimeBasedPartitioner"));
                }
                if trimmed(LOCALE).is_empty() {
                    return Err(config_error(LOCALE, "is required with a time-based partitioner (e.g. en)"));
                }
                if zone_name.is_empty() {
                    return Err(config_error(TIMEZONE, "is required with a time-based partitioner (e.g. UTC)"));
                }
                let zone = timezone;
                let extractor = match trimmed(TIMESTAMP_EXTRACTOR).to_ascii_lowercase().as_str() {
                    "record" => Extractor::Record,
                    "recordfield" => Extractor::RecordField(trimmed(TIMESTAMP_FIELD)),
                    _ => Extractor::Wallclock,
                };
                // Joda drops a trailing delimiter: so does Confluent's partitioner.
                let pattern = pattern.strip_suffix(directory_delim.as_str()).unwrap_or(&pattern).to_string();
                Partitioner::Time(TimePartitioner::new(duration, &pattern, zone, extractor).map_err(|e| config_error(PATH_FORMAT, e))?)
            }
            other => return Err(config_error(PARTITIONER_CLASS, format!("unknown partitioner {other:?}"))),
        };
        let rotate_interval_ms = positive(ROTATE_INTERVAL);
        if rotate_interval_ms.is_some() && !matches!(partitioner, Partitioner::Time(_)) {
            tracing::warn!("{ROTATE_INTERVAL} applies only with a time-based partitioner; ignored, as in Confluent's sink");
        }
        let credentials = non_empty(ACCESS_KEY_ID).map(|id| (id, parsed.password(SECRET_ACCESS_KEY).map(|p| p.0).unwrap_or_default()));
        let level = parsed.int(COMPRESSION_LEVEL);
        Ok(S3SinkConfig {
            bucket: trimmed(BUCKET),
            region: trimmed(REGION),
            store_url: non_empty(STORE_URL),
            path_style: parsed.boolean(PATH_STYLE),
            credentials,
            topics_dir: text(TOPICS_DIR),
            directory_delim,
            file_delim: text(FILE_DELIM),
            zero_pad: parsed.int(ZERO_PAD).max(1) as usize,
            flush_size: parsed.int(FLUSH_SIZE).max(1) as usize,
            compatibility: match text(SCHEMA_COMPATIBILITY).to_ascii_lowercase().as_str() {
                "backward" => Compatibility::Backward,
                "forward" => Compatibility::Forward,
                "full" => Compatibility::Full,
                _ => Compatibility::None,
            },
            rotate_interval_ms: rotate_interval_ms.filter(|_| matches!(partitioner, Partitioner::Time(_))),
            rotate_schedule_ms: positive(ROTATE_SCHEDULE),
            rotate_on_partition_change: parsed.boolean(ROTATE_ON_PARTITION_CHANGE),
            part_size: parsed.int(PART_SIZE).max(5_242_880) as usize,
            gzip,
            gzip_level: (level >= 0).then_some(level as u32),
            format,
            on_null: if trimmed(NULL_VALUES).eq_ignore_ascii_case("ignore") { OnNull::Ignore } else { OnNull::Fail },
            partitioner,
            timezone,
            retry_backoff: Duration::from_millis(parsed.int(RETRY_BACKOFF).max(0) as u64),
            part_retries: parsed.int(PART_RETRIES).max(0) as u32,
            sse_algorithm: non_empty(SSE_ALGORITHM),
            sse_kms_key: non_empty(SSE_KMS_KEY),
            sse_customer_key: parsed
                .password(SSE_CUSTOMER_KEY)
                .map(|p| p.0)
                .filter(|k| !k.trim().is_empty())
                .map(|k| CustomerKey::parse(k.trim()).map_err(|e| config_error(SSE_CUSTOMER_KEY, e)))
                .transpose()?,
            acl: non_empty(ACL),
            keys_format,
            headers_format,
        })
    }

    /// The file extension of this config's files.
    pub fn extension(&self) -> String {
        self.format.extension(self.gzip)
    }

    /// The key of the keys or headers file beside the data file `data_key`, as Confluent's
    /// `Utils.getAdjustedFilename` names it: `t+0+0000000000.avro` has `t+0+0000000000.keys.avro` beside it.
    pub fn view_key(&self, data_key: &str, view: View) -> Option<String> {
        let (suffix, format) = match view {
            View::Keys => (".keys", self.keys_format.as_ref()?),
            View::Headers => (".headers", self.headers_format.as_ref()?),
        };
        let stem = data_key.strip_suffix(&self.extension()).unwrap_or(data_key);
        Some(format!("{stem}{suffix}{}", format.extension(self.gzip)))
    }

    /// The object key of a file, exactly as Confluent's `TopicPartitionWriter.fileKeyToCommit` makes it.
    pub fn object_key(&self, topic: &str, encoded_partition: &str, kafka_partition: i32, start_offset: i64) -> String {
        let name = format!(
            "{topic}{d}{kafka_partition}{d}{start_offset:0width$}{ext}",
            d = self.file_delim,
            width = self.zero_pad,
            ext = self.extension()
        );
        let dir = format!("{topic}{}{encoded_partition}", self.directory_delim);
        if self.topics_dir.trim().is_empty() {
            format!("{dir}{}{name}", self.directory_delim)
        } else {
            format!("{}{d}{dir}{d}{name}", self.topics_dir, d = self.directory_delim)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn rail() -> Vec<(&'static str, &'static str)> {
        vec![
            ("s3.region", "us-west-2"),
            ("s3.bucket.name", "rmoff-rail-streaming-demo"),
            ("flush.size", "65536"),
            ("storage.class", "io.confluent.connect.s3.storage.S3Storage"),
            ("format.class", "io.confluent.connect.s3.format.avro.AvroFormat"),
            ("schema.generator.class", "io.confluent.connect.storage.hive.schema.DefaultSchemaGenerator"),
            ("schema.compatibility", "NONE"),
            ("partitioner.class", "io.confluent.connect.storage.partitioner.TimeBasedPartitioner"),
            ("path.format", "'year'=YYYY/'month'=MM/'day'=dd"),
            ("timestamp.extractor", "Record"),
            ("partition.duration.ms", "1800000"),
            ("locale", "en"),
            ("timezone", "UTC"),
        ]
    }

    #[test]
    fn the_rail_data_config_parses_and_names_objects_as_confluent() {
        let c = S3SinkConfig::parse(&config(&rail())).unwrap();
        assert_eq!(c.format, Format::Avro { codec: "null".into() });
        assert_eq!(c.flush_size, 65536);
        assert_eq!(
            c.object_key("TRAIN_MOVEMENTS", "year=2026/month=12/day=06", 0, 42),
            "topics/TRAIN_MOVEMENTS/year=2026/month=12/day=06/TRAIN_MOVEMENTS+0+0000000042.avro"
        );
    }

    #[test]
    fn extensions_follow_format_and_compression() {
        let mut pairs = rail();
        pairs.retain(|(k, _)| *k != "format.class");
        pairs.push(("format.class", "io.confluent.connect.s3.format.json.JsonFormat"));
        pairs.push(("s3.compression.type", "gzip"));
        assert_eq!(S3SinkConfig::parse(&config(&pairs)).unwrap().extension(), ".json.gz");
        let mut pairs = rail();
        pairs.retain(|(k, _)| *k != "format.class");
        pairs.push(("format.class", "io.confluent.connect.s3.format.parquet.ParquetFormat"));
        assert_eq!(S3SinkConfig::parse(&config(&pairs)).unwrap().extension(), ".snappy.parquet", "snappy by default, as Confluent");
        pairs.push(("parquet.codec", "none"));
        assert_eq!(S3SinkConfig::parse(&config(&pairs)).unwrap().extension(), ".parquet");
        pairs.retain(|(k, _)| *k != "parquet.codec");
        pairs.push(("parquet.codec", "brotli"));
        assert!(S3SinkConfig::parse(&config(&pairs)).unwrap_err().to_string().contains("brotli is not built in"));
        pairs.retain(|(k, _)| *k != "parquet.codec");
        pairs.push(("parquet.codec", "lz4"));
        assert_eq!(S3SinkConfig::parse(&config(&pairs)).unwrap().extension(), ".lz4hadoop.parquet", "parquet-mr's name for Hadoop's LZ4");
    }

    #[test]
    fn keys_and_headers_files_are_named_beside_the_data_file_and_checked_as_confluent() {
        let mut pairs = rail();
        pairs.extend([("store.kafka.keys", "true"), ("store.kafka.headers", "true"), ("headers.format.class", "JsonFormat")]);
        let c = S3SinkConfig::parse(&config(&pairs)).unwrap();
        let data = c.object_key("t", "partition=0", 0, 0);
        assert_eq!(c.view_key(&data, View::Keys).unwrap(), "topics/t/partition=0/t+0+0000000000.keys.avro");
        assert_eq!(c.view_key(&data, View::Headers).unwrap(), "topics/t/partition=0/t+0+0000000000.headers.json");
        let plain = S3SinkConfig::parse(&config(&rail())).unwrap();
        assert_eq!(plain.view_key(&data, View::Keys), None, "not stored unless asked");

        let mut gzip_avro_keys = rail();
        gzip_avro_keys.retain(|(k, _)| *k != "format.class");
        gzip_avro_keys.extend([("format.class", "JsonFormat"), ("s3.compression.type", "gzip"), ("store.kafka.keys", "true")]);
        let err = S3SinkConfig::parse(&config(&gzip_avro_keys)).unwrap_err().to_string();
        assert!(err.contains("keys.format.class") && err.contains("gzip"), "{err}");
        let mut bytes_headers = rail();
        bytes_headers.extend([("store.kafka.headers", "true"), ("headers.format.class", "ByteArrayFormat")]);
        let err = S3SinkConfig::parse(&config(&bytes_headers)).unwrap_err().to_string();
        assert!(err.contains("cannot write headers"), "{err}");
    }

    #[test]
    fn a_customer_key_is_32_bytes_of_base64_and_its_md5_goes_with_it() {
        let key = CustomerKey::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        assert_eq!(key.md5, "tP/LI3N87DFaSk0aoqYgzg==", "Python's hashlib gives this MD5 for bytes 0..32");
        assert!(!format!("{key:?}").contains("AAEC"), "Debug hides the key");
        assert!(CustomerKey::parse("AAECAwQ=").unwrap_err().contains("32 bytes, this one is 5"));
        assert!(CustomerKey::parse("not base64!").unwrap_err().contains("not base64"));
        let pairs = [
            ("s3.bucket.name", "b"),
            ("flush.size", "3"),
            ("format.class", "io.confluent.connect.s3.format.json.JsonFormat"),
            ("s3.sse.customer.key", "short"),
        ];
        let err = S3SinkConfig::parse(&config(&pairs)).unwrap_err().to_string();
        assert!(err.contains("s3.sse.customer.key") && !err.contains("short"), "{err}");
    }
}
