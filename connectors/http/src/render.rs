//! What a record looks like in a request: its string form (as Confluent's connector builds it from a Kafka
//! Connect value, with Java's `toString`), its JSON form, regex rewrites of the string form, and templates
//! (`http.api.url`, `batch.key.pattern` and our `request.body.template`).

use connect_core::java_regex::Replacement;
use connect_core::{SinkRecord, Value};
use regex::Regex;
use std::fmt::Write;

/// The record's value as Confluent's sink sees it with `request.body.format=string`: strings as they are,
/// structs as `Struct{A=1,B=x}` (null fields left out), maps as `{a=1, b=x}`, lists as `[1, 2]`, numbers as
/// Java prints them (`97.3`, `1.0`, `1.0E10`). Map entries keep the record's order (Java's `HashMap` has its
/// own); bytes print as UTF-8 text.
pub fn java_string(value: &Value) -> String {
    let mut out = String::new();
    write_java(&mut out, value);
    out
}

fn write_java(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int8(v) => write!(out, "{v}").unwrap(),
        Value::Int16(v) => write!(out, "{v}").unwrap(),
        Value::Int32(v) => write!(out, "{v}").unwrap(),
        Value::Int64(v) => write!(out, "{v}").unwrap(),
        Value::Float32(v) => out.push_str(&java_double(*v as f64, Some(*v))),
        Value::Float64(v) => out.push_str(&java_double(*v, None)),
        Value::String(s) => out.push_str(s),
        Value::Bytes(b) => out.push_str(&String::from_utf8_lossy(b)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_java(out, item);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_java(out, k);
                out.push('=');
                write_java(out, v);
            }
            out.push('}');
        }
        Value::Struct(s) => {
            out.push_str("Struct{");
            for (i, (name, v)) in s.iter().filter(|(_, v)| !v.is_null()).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(name);
                out.push('=');
                write_java(out, v);
            }
            out.push('}');
        }
    }
}

/// Java's `Double.toString` (and `Float.toString` when `single` is given): plain notation with at least one
/// fractional digit for magnitudes in [10⁻³, 10⁷), otherwise `d.dddE±n`; shortest digits that round-trip.
fn java_double(v: f64, single: Option<f32>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let magnitude = v.abs();
    if v == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let plain = match single {
            Some(f) => format!("{f}"),
            None => format!("{v}"),
        };
        return if plain.contains('.') { plain } else { format!("{plain}.0") };
    }
    let scientific = match single {
        Some(f) => format!("{f:e}"),
        None => format!("{v:e}"),
    };
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
    format!("{mantissa}E{exponent}")
}

/// A string value holding a JSON object or array (what a StringConverter hands over for JSON messages) is
/// taken as that JSON; anything else as it is.
pub fn structured(value: &Value) -> std::borrow::Cow<'_, Value> {
    if let Value::String(s) = value {
        let t = s.trim_start();
        if t.starts_with('{') || t.starts_with('[') {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(s) {
                return std::borrow::Cow::Owned(Value::from_json(&json));
            }
        }
    }
    std::borrow::Cow::Borrowed(value)
}

/// The record's value as JSON text (`request.body.format=json`): JsonConverter's schemaless form; a string
/// holding a JSON object or array goes as that JSON, other strings as JSON strings.
pub fn json_text(value: &Value) -> String {
    structured(value).to_json().to_string()
}

/// The key as text for `${key}`: its Java string form (`null` without a key).
pub fn key_text(record: &SinkRecord) -> String {
    java_string(&record.data.key)
}

/// One `regex.patterns` entry with its replacement, in Java's replacement syntax (`$1`, `${name}`, `\$` for a
/// dollar: connect-core's `java_regex`), plus Confluent's `${key}` and `${topic}`, the record's key and topic.
#[derive(Debug, Clone)]
pub struct RegexRewrite {
    regex: Regex,
    replacement: Replacement,
}

impl RegexRewrite {
    pub fn new(pattern: &str, replacement: &str) -> Result<Self, String> {
        let regex = Regex::new(pattern).map_err(|e| format!("{pattern:?}: {e}"))?;
        let replacement = Replacement::parse(replacement, &regex, &["key", "topic"])?;
        Ok(RegexRewrite { regex, replacement })
    }

    /// Every match in `text` replaced, as Java's `String.replaceAll`.
    pub fn apply(&self, text: &str, key: &str, topic: &str) -> String {
        self.replacement.replace_all(&self.regex, text, &|name| if name == "key" { key.to_string() } else { topic.to_string() })
    }
}

/// What a template slot names.
#[derive(Debug, Clone, PartialEq)]
pub enum Placeholder {
    Topic,
    Key,
    Value,
    Partition,
    Offset,
    Timestamp,
    /// `${key.a.b}`.
    KeyField(Vec<String>),
    /// `${value.a.b}`.
    ValueField(Vec<String>),
}

impl Placeholder {
    fn parse(name: &str) -> Option<Self> {
        let path = |rest: &str| rest.split('.').map(str::to_string).collect::<Vec<_>>();
        Some(match name.trim() {
            "topic" => Placeholder::Topic,
            "key" => Placeholder::Key,
            "value" => Placeholder::Value,
            "partition" => Placeholder::Partition,
            "offset" => Placeholder::Offset,
            "timestamp" => Placeholder::Timestamp,
            n => match (n.strip_prefix("value."), n.strip_prefix("key.")) {
                (Some(rest), _) if !rest.is_empty() => Placeholder::ValueField(path(rest)),
                (_, Some(rest)) if !rest.is_empty() => Placeholder::KeyField(path(rest)),
                _ => return None,
            },
        })
    }

    fn same_kind(&self, other: &Placeholder) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TemplatePart {
    Literal(String),
    /// `in_string`: the slot sits inside a JSON string literal of the template, so what it inserts is escaped
    /// string content; outside one it inserts a JSON value.
    Slot {
        what: Placeholder,
        in_string: bool,
    },
}

/// A template with `${...}` slots. Plain text templates (URLs, batch keys) insert text as it is; JSON
/// templates insert JSON-escaped text inside string literals and JSON values elsewhere, so the body stays valid
/// JSON whatever the record holds (quotes, newlines, backslashes).
#[derive(Debug, Clone, PartialEq)]
pub struct BodyTemplate {
    parts: Vec<TemplatePart>,
}

impl BodyTemplate {
    /// A text template allowing only `allowed` kinds of slots; any other `${...}` is an error.
    pub fn parse_text(text: &str, allowed: &[Placeholder]) -> Result<Self, String> {
        Self::parse(text, false, Some(allowed))
    }

    /// A JSON body template: `${topic}`, `${key}`, `${value}`, `${key.F}`, `${value.F.G}`, `${partition}`,
    /// `${offset}`, `${timestamp}`.
    pub fn parse_json(text: &str) -> Result<Self, String> {
        Self::parse(text, true, None)
    }

    fn parse(text: &str, json: bool, allowed: Option<&[Placeholder]>) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut in_string = false;
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("${") {
                let end = after.find('}').ok_or_else(|| format!("{text:?}: `${{` without a closing `}}`"))?;
                let name = &after[..end];
                let what = Placeholder::parse(name).ok_or_else(|| {
                    format!("{text:?}: unknown placeholder ${{{name}}} (use topic, key, value, value.FIELD, key.FIELD, partition, offset, timestamp)")
                })?;
                if let Some(allowed) = allowed {
                    if !allowed.iter().any(|a| a.same_kind(&what)) {
                        return Err(format!("{text:?}: ${{{name}}} cannot be used here"));
                    }
                }
                if !literal.is_empty() {
                    parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(TemplatePart::Slot { what, in_string: json && in_string });
                rest = &after[end + 1..];
                continue;
            }
            let c = rest.chars().next().expect("not empty");
            rest = &rest[c.len_utf8()..];
            literal.push(c);
            if json {
                match c {
                    '"' => in_string = !in_string,
                    // An escaped character inside a string (\" included) is copied as it is.
                    '\\' if in_string => {
                        if let Some(next) = rest.chars().next() {
                            literal.push(next);
                            rest = &rest[next.len_utf8()..];
                        }
                    }
                    _ => {}
                }
            }
        }
        if !literal.is_empty() {
            parts.push(TemplatePart::Literal(literal));
        }
        Ok(BodyTemplate { parts })
    }

    /// True when the template has no slots (the same text for every record).
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, TemplatePart::Literal(_)))
    }

    /// The template filled in for `record` (text templates: slots as text; JSON templates: as described on
    /// the type).
    pub fn render(&self, record: &SinkRecord) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Literal(s) => out.push_str(s),
                TemplatePart::Slot { what, in_string } => fill(&mut out, what, *in_string, record),
            }
        }
        out
    }

    /// As [`render`](Self::render), for text templates (URLs, batch keys): slots as plain text.
    pub fn render_text(&self, record: &SinkRecord) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Literal(s) => out.push_str(s),
                TemplatePart::Slot { what, .. } => out.push_str(&slot_text(what, record)),
            }
        }
        out
    }
}

fn lookup(value: &Value, path: &[String]) -> Option<Value> {
    let root = structured(value);
    let mut current: &Value = &root;
    for name in path {
        current = current.get_field(name)?;
    }
    Some(current.clone())
}

/// A slot's value, `None` when a field path leads nowhere.
fn slot_value(what: &Placeholder, record: &SinkRecord) -> Option<Value> {
    Some(match what {
        Placeholder::Topic => Value::String(record.topic().to_string()),
        Placeholder::Key => record.data.key.clone(),
        Placeholder::Value => structured(&record.data.value).into_owned(),
        Placeholder::Partition => Value::Int32(record.partition()),
        Placeholder::Offset => Value::Int64(record.kafka_offset),
        Placeholder::Timestamp => record.data.timestamp.map(Value::Int64).unwrap_or(Value::Null),
        Placeholder::KeyField(path) => lookup(&record.data.key, path)?,
        Placeholder::ValueField(path) => lookup(&record.data.value, path)?,
    })
}

fn slot_text(what: &Placeholder, record: &SinkRecord) -> String {
    match what {
        Placeholder::Key => key_text(record),
        Placeholder::Value => java_string(&record.data.value),
        other => slot_value(other, record).map(|v| java_string(&v)).unwrap_or_default(),
    }
}

fn fill(out: &mut String, what: &Placeholder, in_string: bool, record: &SinkRecord) {
    let value = slot_value(what, record);
    if in_string {
        // Text inside a JSON string: strings as they are, structures as JSON, then escaped; null or missing: empty.
        let text = match &value {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Array(_) | Value::Map(_) | Value::Struct(_))) => v.to_json().to_string(),
            Some(v) => java_string(v),
        };
        let quoted = serde_json::Value::String(text).to_string();
        out.push_str(&quoted[1..quoted.len() - 1]);
    } else {
        out.push_str(&value.map(|v| v.to_json()).unwrap_or(serde_json::Value::Null).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::{RecordData, Struct, TimestampType};

    fn record(key: Value, value: Value) -> SinkRecord {
        SinkRecord::new(RecordData::new("TRAINS", None, value).with_key(None, key), 2, 41, TimestampType::CreateTime)
    }

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(entries.iter().map(|(k, v)| (Value::from(*k), v.clone())).collect())
    }

    #[test]
    fn java_string_forms() {
        let mut s = Struct::new();
        s.put("MESSAGE", Value::from("late")).put("DELAY", Value::Int32(4)).put("GONE", Value::Null).put("RATE", Value::Float64(97.3));
        assert_eq!(java_string(&Value::Struct(s)), "Struct{MESSAGE=late,DELAY=4,RATE=97.3}");
        assert_eq!(java_string(&map(&[("MESSAGE", Value::from("hi")), ("N", Value::Int64(1))])), "{MESSAGE=hi, N=1}");
        assert_eq!(java_string(&Value::Array(vec![Value::Int64(1), Value::Boolean(true)])), "[1, true]");
        assert_eq!(java_string(&Value::from("as is")), "as is");
        let d = |v: f64| java_string(&Value::Float64(v));
        assert_eq!([d(1.0), d(0.001), d(1e7), d(1.5e-4), d(-2.5), d(0.0)], ["1.0", "0.001", "1.0E7", "1.5E-4", "-2.5", "0.0"]);
        assert_eq!(java_string(&Value::Float32(0.1)), "0.1");
    }

    #[test]
    fn the_telegram_regex_turns_a_message_into_a_text_field() {
        let rewrite = RegexRewrite::new(r".*\{MESSAGE=(.*)\}.*", r#""text":"$1""#).unwrap();
        let schemaless = java_string(&map(&[("MESSAGE", Value::from("Train 1A23 is 12 minutes late"))]));
        assert_eq!(rewrite.apply(&schemaless, "k", "t"), r#""text":"Train 1A23 is 12 minutes late""#);
        let mut s = Struct::new();
        s.put("MESSAGE", Value::from("late"));
        assert_eq!(rewrite.apply(&java_string(&Value::Struct(s)), "k", "t"), r#""text":"late""#);
    }

    #[test]
    fn java_replacement_syntax() {
        // `$1x` is group 1 then "x" (the regex crate would read a group named "1x").
        assert_eq!(RegexRewrite::new("(a)(b)", "$2$1x").unwrap().apply("ab", "", ""), "bax");
        // `$12` with two groups is group 1 then "2"; with twelve it would be group 12.
        assert_eq!(RegexRewrite::new("(a)(b)", "$12").unwrap().apply("ab", "", ""), "a2");
        assert_eq!(RegexRewrite::new("(?P<w>a)", "<${w}>").unwrap().apply("a", "", ""), "<a>");
        assert_eq!(RegexRewrite::new("a", r"\$1 ${key}@${topic}").unwrap().apply("a", "K$1", "T"), "$1 K$1@T");
        assert!(RegexRewrite::new("(a)", "$2").is_err());
        assert!(RegexRewrite::new("a", "$x").is_err());
        assert!(RegexRewrite::new("a", "${nope}").is_err());
    }

    #[test]
    fn json_templates_escape_inside_strings_and_insert_json_outside() {
        let t = BodyTemplate::parse_json(r#"{"chat_id":"-1","text":"${value.MESSAGE} (${topic}/${partition})","raw":${value},"n":${value.N},"x":"${value.MISSING}","q":"a\"${key}"}"#).unwrap();
        let value = map(&[("MESSAGE", Value::from("say \"hi\"\nnow \\ ok")), ("N", Value::Int64(3))]);
        let body = t.render(&record(Value::from("k\"1"), value));
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(json["text"], "say \"hi\"\nnow \\ ok (TRAINS/2)");
        assert_eq!(json["raw"]["N"], 3);
        assert_eq!(json["n"], 3);
        assert_eq!(json["x"], "");
        assert_eq!(json["q"], "a\"k\"1");
        // A string value holding JSON is looked into.
        let t = BodyTemplate::parse_json(r#"{"m":"${value.m}"}"#).unwrap();
        assert_eq!(t.render(&record(Value::Null, Value::from(r#"{"m":"x"}"#))), r#"{"m":"x"}"#);
        assert!(BodyTemplate::parse_json("${nope}").is_err());
        assert!(BodyTemplate::parse_json("${value").is_err());
    }

    #[test]
    fn text_templates_for_urls_and_batch_keys() {
        let url = BodyTemplate::parse_text("http://h/${topic}/${key}", &[Placeholder::Topic, Placeholder::Key]).unwrap();
        assert_eq!(url.render_text(&record(Value::from("k1"), Value::Null)), "http://h/TRAINS/k1");
        assert!(!url.is_constant());
        assert!(BodyTemplate::parse_text("someKey", &[]).unwrap().is_constant());
        assert!(BodyTemplate::parse_text("http://h/${value}", &[Placeholder::Topic, Placeholder::Key]).is_err());
    }

    #[test]
    fn json_form_of_values() {
        assert_eq!(json_text(&map(&[("a", Value::Int64(1))])), r#"{"a":1}"#);
        assert_eq!(json_text(&Value::from(r#"{"a": 1}"#)), r#"{"a":1}"#);
        assert_eq!(json_text(&Value::from("plain")), r#""plain""#);
    }
}
