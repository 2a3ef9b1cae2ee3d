use super::{find, put, text_of, with_fields};
use chrono::TimeZone;
use connect_core::transform::{Transformation, Transformed};
use connect_core::{logical, Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, Validator, Value};

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
    use crate::wrangle::test_support::{cfg, configured, map, record};
    use connect_core::ErrorKind;

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
