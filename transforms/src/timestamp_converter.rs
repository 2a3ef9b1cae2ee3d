//! `TimestampConverter$Key` / `$Value`: convert a timestamp between a string (SimpleDateFormat pattern,
//! UTC), unix time (`unix.precision`), and Kafka Connect's Timestamp, Date and Time logical types.

use crate::extract_field::Side;
use crate::more::format_timestamp;
use connect_core::transform::{Transformation, Transformed};
use connect_core::{
    logical, Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, Schema, SchemaRef, SchemaType,
    Validator, Value,
};

const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of a civil date (inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse `text` by a SimpleDateFormat pattern (yyyy, MM, dd, HH, mm, ss, SSS and literals), as UTC
/// epoch milliseconds.
pub fn parse_timestamp(text: &str, pattern: &str) -> Option<i64> {
    let (t, p): (Vec<char>, Vec<char>) = (text.chars().collect(), pattern.chars().collect());
    let (mut ti, mut pi) = (0, 0);
    let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut ms) = (1970i64, 1u32, 1u32, 0i64, 0i64, 0i64, 0i64);
    while pi < p.len() {
        let c = p[pi];
        if c == '\'' {
            pi += 1;
            while pi < p.len() && p[pi] != '\'' {
                if t.get(ti) != Some(&p[pi]) {
                    return None;
                }
                ti += 1;
                pi += 1;
            }
            pi += 1;
            continue;
        }
        let mut n = 1;
        while pi + n < p.len() && p[pi + n] == c {
            n += 1;
        }
        if c.is_ascii_alphabetic() {
            // Numeric fields: exactly n digits, except one-letter fields which take one or two.
            let max = if n == 1 {
                2
            } else if c == 'y' && n == 4 {
                4
            } else {
                n
            };
            let start = ti;
            while ti < t.len() && ti - start < max && t[ti].is_ascii_digit() {
                ti += 1;
            }
            if ti == start {
                return None;
            }
            let v: i64 = t[start..ti].iter().collect::<String>().parse().ok()?;
            match c {
                'y' => y = if n == 2 { 2000 + v } else { v },
                'M' => mo = u32::try_from(v).ok().filter(|m| (1..=12).contains(m))?,
                'd' => d = u32::try_from(v).ok().filter(|d| (1..=31).contains(d))?,
                'H' => h = v,
                'm' => mi = v,
                's' => s = v,
                'S' => ms = v,
                _ => return None,
            }
        } else {
            for _ in 0..n {
                if t.get(ti) != Some(&c) {
                    return None;
                }
                ti += 1;
            }
        }
        pi += n;
    }
    if ti != t.len() || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * DAY_MS + ((h * 60 + mi) * 60 + s) * 1000 + ms)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    String,
    Unix,
    Date,
    Time,
    Timestamp,
}

pub struct TimestampConverter {
    side: Side,
    field: Option<String>,
    target: Target,
    format: Option<String>,
    /// Milliseconds per unit of unix time (1000 for seconds; fractions for micro- and nanoseconds).
    unix_ms_per_unit: f64,
}

impl TimestampConverter {
    pub fn new(side: Side) -> Self {
        TimestampConverter { side, field: None, target: Target::Timestamp, format: None, unix_ms_per_unit: 1.0 }
    }

    /// Any supported input to epoch milliseconds.
    fn to_ms(&self, schema: Option<&Schema>, value: &Value) -> Result<i64> {
        let name = schema.and_then(|s| s.name.as_deref());
        match (name, value) {
            (Some(logical::DATE), v) => Ok(v.as_i64().ok_or_else(|| self.bad(v))? * DAY_MS),
            (Some(logical::TIME) | Some(logical::TIMESTAMP), v) => v.as_i64().ok_or_else(|| self.bad(v)),
            (_, Value::String(text)) => {
                let format = self
                    .format
                    .as_deref()
                    .ok_or_else(|| ConnectError::data("TimestampConverter: a string input needs the format setting"))?;
                parse_timestamp(text.trim(), format)
                    .ok_or_else(|| ConnectError::data(format!("TimestampConverter: could not parse '{text}' with format '{format}'")))
            }
            (_, v) => Ok((v.as_i64().ok_or_else(|| self.bad(v))? as f64 * self.unix_ms_per_unit) as i64),
        }
    }

    fn bad(&self, v: &Value) -> ConnectError {
        ConnectError::data(format!("TimestampConverter: cannot convert a {} value to a timestamp", v.type_name()))
    }

    /// Epoch milliseconds to the target type.
    fn ms_to_target(&self, ms: i64, optional: bool) -> Result<(SchemaRef, Value)> {
        let (mut schema, value) = match self.target {
            Target::String => {
                let format =
                    self.format.as_deref().ok_or_else(|| ConnectError::fatal("TimestampConverter: target.type=string needs format"))?;
                (Schema::new(SchemaType::String), Value::String(format_timestamp(ms, format)))
            }
            Target::Unix => (Schema::new(SchemaType::Int64), Value::Int64((ms as f64 / self.unix_ms_per_unit) as i64)),
            Target::Timestamp => (logical::timestamp(), Value::Int64(ms)),
            Target::Date => (logical::date(), Value::Int32(ms.div_euclid(DAY_MS) as i32)),
            Target::Time => (logical::time(), Value::Int32(ms.rem_euclid(DAY_MS) as i32)),
        };
        schema.optional = optional;
        Ok((schema.into_ref(), value))
    }
}

impl Transformation for TimestampConverter {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::new(
                "field",
                ConfigType::String,
                Some(""),
                Importance::High,
                "The field containing the timestamp, or empty if the entire value is a timestamp",
            ))
            .define(
                ConfigKey::required(
                    "target.type",
                    ConfigType::String,
                    Importance::High,
                    "The desired timestamp representation: string, unix, Date, Time, or Timestamp",
                )
                .validator(Validator::OneOf(vec!["string", "unix", "Date", "Time", "Timestamp"])),
            )
            .define(ConfigKey::new(
                "format",
                ConfigType::String,
                Some(""),
                Importance::Medium,
                "A SimpleDateFormat-compatible format for the timestamp (UTC).",
            ))
            .define(
                ConfigKey::new(
                    "unix.precision",
                    ConfigType::String,
                    Some("milliseconds"),
                    Importance::Low,
                    "The desired unix precision for the timestamp: seconds, milliseconds, microseconds, or nanoseconds.",
                )
                .validator(Validator::OneOf(vec!["seconds", "milliseconds", "microseconds", "nanoseconds"])),
            )
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.field = Some(parsed.string("field")).filter(|f| !f.is_empty());
        self.target = match parsed.string("target.type").to_ascii_lowercase().as_str() {
            "string" => Target::String,
            "unix" => Target::Unix,
            "date" => Target::Date,
            "time" => Target::Time,
            _ => Target::Timestamp,
        };
        self.format = Some(parsed.string("format")).filter(|f| !f.is_empty());
        if self.target == Target::String && self.format.is_none() {
            return Err(ConnectError::fatal("TimestampConverter requires format option to be specified when using string timestamps"));
        }
        self.unix_ms_per_unit = match parsed.string("unix.precision").to_ascii_lowercase().as_str() {
            "seconds" => 1000.0,
            "microseconds" => 0.001,
            "nanoseconds" => 0.000_001,
            _ => 1.0,
        };
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let (schema_slot, value_slot) = self.side.parts(record);
        match &self.field {
            None => {
                if value_slot.is_null() {
                    return Ok(Transformed::Keep);
                }
                let ms = self.to_ms(schema_slot.as_deref(), value_slot)?;
                let (schema, value) = self.ms_to_target(ms, schema_slot.as_ref().is_some_and(|s| s.optional))?;
                if schema_slot.is_some() {
                    *schema_slot = Some(schema);
                }
                *value_slot = value;
            }
            Some(field) => {
                let field_schema = schema_slot.as_ref().and_then(|s| s.field(field)).map(|f| f.schema.clone());
                let current = value_slot
                    .get_field(field)
                    .cloned()
                    .ok_or_else(|| ConnectError::data(format!("TimestampConverter: field {field} not found")))?;
                if current.is_null() {
                    return Ok(Transformed::Keep);
                }
                let ms = self.to_ms(field_schema.as_deref(), &current)?;
                let (new_schema, new_value) = self.ms_to_target(ms, field_schema.as_ref().is_some_and(|s| s.optional))?;
                match value_slot {
                    Value::Struct(st) => {
                        st.put(field.clone(), new_value);
                    }
                    Value::Map(entries) => {
                        if let Some(e) = entries.iter_mut().find(|(k, _)| k.as_str() == Some(field.as_str())) {
                            e.1 = new_value;
                        }
                    }
                    other => return Err(self.bad(other)),
                }
                if let Some(s) = schema_slot.as_ref() {
                    let fields =
                        s.fields.iter().map(|f| (f.name.clone(), if &f.name == field { new_schema.clone() } else { f.schema.clone() }));
                    let mut rebuilt = Schema::structure(fields);
                    rebuilt.optional = s.optional;
                    rebuilt.name = s.name.clone();
                    *schema_slot = Some(rebuilt.into_ref());
                }
            }
        }
        Ok(Transformed::Keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(pairs: &[(&str, &str)]) -> TimestampConverter {
        let mut t = TimestampConverter::new(Side::Value);
        t.configure(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap();
        t
    }

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse_timestamp("2020-10-06 14:41", "yyyy-MM-dd HH:mm"), Some(1_601_995_260_000));
        assert_eq!(parse_timestamp("06/10/2020", "dd/MM/yyyy"), Some(1_601_942_400_000));
        assert_eq!(parse_timestamp("2020-13-06", "yyyy-MM-dd"), None);
        assert_eq!(parse_timestamp("2020-10-06x", "yyyy-MM-dd"), None);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn string_field_to_timestamp_and_back() {
        let json: serde_json::Value = serde_json::from_str(r#"{"when":"2020-10-06 14:41","n":1}"#).unwrap();
        let mut r = RecordData::new("t", None, Value::from_json(&json));
        configured(&[("field", "when"), ("target.type", "Timestamp"), ("format", "yyyy-MM-dd HH:mm")]).apply(&mut r).unwrap();
        assert_eq!(r.value.get_field("when"), Some(&Value::Int64(1_601_995_260_000)));
        configured(&[("field", "when"), ("target.type", "string"), ("format", "yyyyMMdd")]).apply(&mut r).unwrap();
        assert_eq!(r.value.get_field("when"), Some(&Value::from("20201006")));
    }

    #[test]
    fn unix_seconds_to_date_and_bad_input() {
        let mut r = RecordData::new("t", None, Value::Int64(1_601_995_260));
        configured(&[("target.type", "Date"), ("unix.precision", "seconds")]).apply(&mut r).unwrap();
        assert_eq!(r.value, Value::Int32(18541));
        let mut bad = RecordData::new("t", None, Value::from("yesterday"));
        assert_eq!(
            configured(&[("target.type", "unix"), ("format", "yyyy-MM-dd")]).apply(&mut bad).unwrap_err().kind(),
            connect_core::ErrorKind::Data
        );
        let mut t = TimestampConverter::new(Side::Value);
        assert!(t.configure(&[("target.type".to_string(), "string".to_string())].into_iter().collect()).is_err(), "string needs format");
    }
}
