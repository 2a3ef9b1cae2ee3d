//! Directories of the objects, as storage-common's partitioners name them: `partition=N` (Default),
//! `field=value` per field (Field), and time buckets formatted with a Joda-Time pattern (TimeBased, Hourly,
//! Daily), with the record's time from an extractor (Record, RecordField, Wallclock).

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Timelike, Utc};
use connect_core::{logical, SinkRecord, Value};

#[derive(Debug, Clone)]
pub enum Partitioner {
    Default,
    Field { fields: Vec<String>, delim: String },
    Time(TimePartitioner),
}

/// Why a record has no directory: a data error of that record.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct PartitionError(pub String);

#[derive(Debug, Clone)]
pub enum Extractor {
    /// The record's Kafka timestamp.
    Record,
    /// A value field: epoch ms, an ISO-8601 string, or a Timestamp.
    RecordField(String),
    /// The worker's clock (files then depend on when they were written: not exactly once).
    Wallclock,
}

#[derive(Debug, Clone)]
pub struct TimePartitioner {
    duration_ms: i64,
    pattern: Vec<Token>,
    zone: chrono_tz::Tz,
    pub extractor: Extractor,
}

/// A piece of a Joda-Time pattern.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(String),
    /// A pattern letter and how many times it repeats.
    Field(char, usize),
}

impl Partitioner {
    /// The record's directory under its topic. `now`: the wall clock in ms, taken once per batch.
    pub fn encode(&self, record: &SinkRecord, now: i64) -> Result<String, PartitionError> {
        match self {
            Partitioner::Default => Ok(format!("partition={}", record.data.partition.unwrap_or_default())),
            Partitioner::Field { fields, delim } => {
                let mut parts = Vec::with_capacity(fields.len());
                for field in fields {
                    let value = lookup(&record.data.value, field).ok_or_else(|| {
                        PartitionError(format!("the value has no field {field:?} to partition by (partition.field.name)"))
                    })?;
                    let text = match value {
                        Value::Null => "null".to_string(),
                        Value::Boolean(b) => b.to_string(),
                        Value::Int8(v) => v.to_string(),
                        Value::Int16(v) => v.to_string(),
                        Value::Int32(v) => v.to_string(),
                        Value::Int64(v) => v.to_string(),
                        Value::String(s) => s.clone(),
                        other => {
                            return Err(PartitionError(format!(
                                "field {field:?} is a {}: partition by a string, integer or boolean",
                                other.type_name()
                            )))
                        }
                    };
                    parts.push(format!("{field}={text}"));
                }
                Ok(parts.join(delim))
            }
            Partitioner::Time(time) => Ok(time.encode(time.timestamp(record, now)?)),
        }
    }

    /// The record's time for rotation (`rotate.interval.ms`): the extractor's with a time-based partitioner.
    pub fn timestamp(&self, record: &SinkRecord, now: i64) -> Result<Option<i64>, PartitionError> {
        match self {
            Partitioner::Time(time) => time.timestamp(record, now).map(Some),
            _ => Ok(None),
        }
    }
}

/// A field of a struct or a map with string keys, dotted names going into nested ones.
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    if let Some(v) = value.get_field(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    lookup(value.get_field(head)?, rest)
}

impl TimePartitioner {
    pub fn new(duration_ms: i64, pattern: &str, zone: chrono_tz::Tz, extractor: Extractor) -> Result<Self, String> {
        Ok(TimePartitioner { duration_ms, pattern: parse_pattern(pattern)?, zone, extractor })
    }

    pub fn timestamp(&self, record: &SinkRecord, now: i64) -> Result<i64, PartitionError> {
        match &self.extractor {
            Extractor::Wallclock => Ok(now),
            Extractor::Record => {
                record.data.timestamp.ok_or_else(|| PartitionError("the record has no timestamp (timestamp.extractor=Record)".into()))
            }
            Extractor::RecordField(field) => {
                let schema_name = record.data.value_schema.as_ref().and_then(|s| s.field(field)).and_then(|f| f.schema.name.clone());
                let value = lookup(&record.data.value, field)
                    .ok_or_else(|| PartitionError(format!("the value has no field {field:?} (timestamp.field)")))?;
                match value {
                    Value::Int64(ms) => Ok(*ms),
                    Value::Int32(v) if schema_name.as_deref() != Some(logical::DATE) => Ok(*v as i64),
                    Value::String(s) => parse_time(s)
                        .ok_or_else(|| PartitionError(format!("field {field:?}: {s:?} is neither epoch ms nor an ISO-8601 time"))),
                    other => Err(PartitionError(format!("field {field:?} is a {}: not a time", other.type_name()))),
                }
            }
        }
    }

    /// The directory of a time: the time floored to `partition.duration.ms` in the zone, formatted.
    pub fn encode(&self, timestamp: i64) -> String {
        let Some(utc) = DateTime::<Utc>::from_timestamp_millis(timestamp) else { return format!("{timestamp}") };
        let local = utc.with_timezone(&self.zone).naive_local();
        let local_ms = local.and_utc().timestamp_millis();
        let bucket = local_ms - local_ms.rem_euclid(self.duration_ms);
        let bucket = DateTime::<Utc>::from_timestamp_millis(bucket).map(|t| t.naive_utc()).unwrap_or(local);
        render(&self.pattern, &bucket)
    }

    /// The zone's start of the day of `now`, for scheduled rotation.
    pub fn zone(&self) -> chrono_tz::Tz {
        self.zone
    }
}

/// Epoch ms as digits, or an ISO-8601 time.
fn parse_time(text: &str) -> Option<i64> {
    let t = text.trim();
    if !t.is_empty() && t.len() <= 20 && t.trim_start_matches('-').chars().all(|c| c.is_ascii_digit()) {
        return t.parse().ok();
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp_millis());
    }
    NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| Utc.from_utc_datetime(&n).timestamp_millis())
}

/// A Joda-Time pattern: letters are fields, `'...'` quotes literal text (`''` is a quote), anything else is
/// itself. The fields directories use are supported: years, months, days, hours, minutes, seconds, day of year.
fn parse_pattern(pattern: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut literal = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                literal.push('\'');
                i += 2;
                continue;
            }
            // Quoted text up to the closing quote; a doubled quote inside is a quote.
            i += 1;
            loop {
                match (chars.get(i), chars.get(i + 1)) {
                    (Some('\''), Some('\'')) => {
                        literal.push('\'');
                        i += 2;
                    }
                    (Some('\''), _) => {
                        i += 1;
                        break;
                    }
                    (Some(&c), _) => {
                        literal.push(c);
                        i += 1;
                    }
                    (None, _) => return Err(format!("unclosed quote in {pattern:?}")),
                }
            }
        } else if c.is_ascii_alphabetic() {
            if !matches!(c, 'Y' | 'y' | 'M' | 'd' | 'H' | 'k' | 'm' | 's' | 'D' | 'S') {
                return Err(format!("pattern letter {c:?} is not supported (years, months, days, hours, minutes, seconds)"));
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(Token::Field(c, n));
            i += n;
        } else {
            literal.push(c);
            i += 1;
        }
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

const MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

fn render(tokens: &[Token], t: &NaiveDateTime) -> String {
    let mut out = String::new();
    for token in tokens {
        match token {
            Token::Literal(s) => out.push_str(s),
            Token::Field(c, n) => {
                let (value, width) = match c {
                    // Joda: two letters of a year are its last two digits.
                    'Y' | 'y' if *n == 2 => (t.year().rem_euclid(100) as i64, 2),
                    'Y' | 'y' => (t.year() as i64, *n),
                    'M' if *n >= 4 => {
                        out.push_str(MONTHS[t.month0() as usize]);
                        continue;
                    }
                    'M' if *n == 3 => {
                        out.push_str(&MONTHS[t.month0() as usize][..3]);
                        continue;
                    }
                    'M' => (t.month() as i64, *n),
                    'd' => (t.day() as i64, *n),
                    'H' => (t.hour() as i64, *n),
                    'k' => (if t.hour() == 0 { 24 } else { t.hour() as i64 }, *n),
                    'm' => (t.minute() as i64, *n),
                    's' => (t.second() as i64, *n),
                    // Fraction of a second: S tenths, SS hundredths, SSS milliseconds (more: zeros after).
                    'S' => {
                        let millis = format!("{:03}", t.nanosecond() / 1_000_000);
                        out.push_str(&format!("{millis:0<width$}", width = *n)[..*n]);
                        continue;
                    }
                    'D' => (t.ordinal() as i64, *n),
                    _ => unreachable!("checked when parsed"),
                };
                out.push_str(&format!("{value:0width$}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{RecordData, TimestampType};

    fn hourly(zone: &str) -> TimePartitioner {
        TimePartitioner::new(3_600_000, "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH", zone.parse().unwrap(), Extractor::Record).unwrap()
    }

    #[test]
    fn time_buckets_are_formatted_in_the_zone() {
        // 2026-12-06T05:40:24.123Z
        let t = 1_796_535_624_123;
        assert_eq!(hourly("UTC").encode(t), "year=2026/month=12/day=06/hour=05");
        assert_eq!(hourly("Asia/Kolkata").encode(t), "year=2026/month=12/day=06/hour=11", "+05:30, floored to the local hour");
        let half_hours =
            TimePartitioner::new(1_800_000, "'year'=YYYY/'month'=MM/'day'=dd", "UTC".parse().unwrap(), Extractor::Record).unwrap();
        assert_eq!(half_hours.encode(t), "year=2026/month=12/day=06");
        let names = TimePartitioner::new(86_400_000, "yy-MMM-dd''D'o''clock'", "UTC".parse().unwrap(), Extractor::Record).unwrap();
        assert_eq!(names.encode(t), "26-Dec-06'340o'clock");
        let fraction = TimePartitioner::new(1, "ss.S/SSS", "UTC".parse().unwrap(), Extractor::Record).unwrap();
        assert_eq!(fraction.encode(t), "24.1/123");
        assert!(TimePartitioner::new(1, "YYYY-ww", "UTC".parse().unwrap(), Extractor::Record).is_err());
    }

    #[test]
    fn default_and_field_directories() {
        let mut s = connect_core::Struct::new();
        s.put("TOC", Value::String("NT".into()));
        s.put("N", Value::Int32(3));
        let record = SinkRecord::new(RecordData::new("t", None, Value::Struct(s)), 4, 0, TimestampType::CreateTime);
        assert_eq!(Partitioner::Default.encode(&record, 0).unwrap(), "partition=4");
        let field = Partitioner::Field { fields: vec!["TOC".into(), "N".into()], delim: "/".into() };
        assert_eq!(field.encode(&record, 0).unwrap(), "TOC=NT/N=3");
        let missing = Partitioner::Field { fields: vec!["X".into()], delim: "/".into() };
        assert!(missing.encode(&record, 0).is_err());
    }

    #[test]
    fn record_field_times_are_ms_or_iso() {
        assert_eq!(parse_time("1796535624123"), Some(1_796_535_624_123));
        assert_eq!(parse_time("2026-12-06T05:40:24.123Z"), Some(1_796_535_624_123));
        assert_eq!(parse_time("yesterday"), None);
    }
}
