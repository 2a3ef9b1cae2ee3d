//! `org.apache.kafka.connect.transforms.Filter`: drops every record it is applied to; used with a predicate.
//! And Confluent's `Filter$Key`/`$Value`, which keeps or drops records by a JSONPath condition.

use crate::extract_field::Side;
use connect_core::transform::{Transformation, Transformed};
use connect_core::{Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, Validator};
use serde_json_path::JsonPath;

#[derive(Default)]
pub struct Filter;

impl Transformation for Filter {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
    }
    fn configure(&mut self, _config: &Config) -> Result<()> {
        Ok(())
    }
    fn apply(&self, _record: &mut RecordData) -> Result<Transformed> {
        Ok(Transformed::Drop)
    }
}

/// Confluent's `io.confluent.connect.transforms.Filter$Key` / `$Value`: keep (`filter.type=include`) or
/// drop (`exclude`) the records a JSONPath `filter.condition` matches, e.g.
/// `$[?(@.objects.Cat > 0)]` or `$.key[?(@.nestedKey == "value1" || @.nestedKey == "value2")]`.
///
/// Confluent evaluates with Jayway JsonPath, where a filter `[?(...)]` applied to an object tests that
/// object itself; RFC 9535 (serde_json_path) would test the object's members. So a condition ending in a
/// filter is evaluated as Jayway does: the path before it is looked up, and the filter is applied to each
/// node found, an object as itself, an array to its items. A condition without a filter matches when its
/// path exists. `missing.or.null.behavior` (fail, include, exclude) decides for a record without the
/// path before the filter, or where it is null.
pub struct ConfluentFilter {
    side: Side,
    /// The path up to a trailing filter (the whole condition when there is none)...
    target: Option<JsonPath>,
    /// ...and the trailing filter, as `$[?...]`, applied to what `target` finds.
    filter: Option<JsonPath>,
    include: bool,
    missing: Missing,
    condition: String,
    /// `target` names one place (no filter, wildcard, slice or descendant): finding nothing there means the
    /// record lacks it. Otherwise finding nothing is an ordinary non-match.
    definite: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    Fail,
    Include,
    Exclude,
}

impl ConfluentFilter {
    pub fn new(side: Side) -> Self {
        ConfluentFilter {
            side,
            target: None,
            filter: None,
            include: true,
            missing: Missing::Fail,
            condition: String::new(),
            definite: true,
        }
    }
}

/// `$.a.b[?(cond)]` → (`$.a.b`, `$[?(cond)]`): the trailing filter selector, if the condition ends in one.
fn split_trailing_filter(condition: &str) -> Option<(&str, String)> {
    let trimmed = condition.trim();
    if !trimmed.ends_with(']') {
        return None;
    }
    // The `[?` that opens the last bracket: scan back over balanced brackets, outside quotes.
    let bytes = trimmed.as_bytes();
    let (mut depth, mut quote) = (0i32, None::<u8>);
    for i in (0..bytes.len()).rev() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q && (i == 0 || bytes[i - 1] != b'\\') => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b']' => depth += 1,
            None if c == b'[' => {
                depth -= 1;
                if depth == 0 {
                    let selector = &trimmed[i..];
                    let path = &trimmed[..i];
                    // `$..[?...]` stays whole: the descendant segment needs a selector after it.
                    let filter = selector[1..].trim_start().starts_with('?') && !path.ends_with("..");
                    return filter.then(|| (path, format!("${selector}")));
                }
            }
            None => {}
        }
    }
    None
}

impl Transformation for ConfluentFilter {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::required(
                "filter.condition",
                ConfigType::String,
                Importance::High,
                "A JSONPath predicate on the record's key or value, e.g. $[?(@.objects.Cat > 0)] (Jayway's semantics for a trailing filter on an object).",
            ))
            .define(
                ConfigKey::new("filter.type", ConfigType::String, Some("include"), Importance::High, "include: keep the records that match (drop the others); exclude: drop them.")
                    .validator(Validator::OneOf(vec!["include", "exclude"])),
            )
            .define(
                ConfigKey::new(
                    "missing.or.null.behavior",
                    ConfigType::String,
                    Some("fail"),
                    Importance::Medium,
                    "What to do with a record that lacks the condition's path (or has null there): fail (a data error), include or exclude.",
                )
                .validator(Validator::OneOf(vec!["fail", "include", "exclude"])),
            )
    }

    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        let condition = parsed.string("filter.condition");
        let invalid = |e: serde_json_path::ParseError| {
            ConnectError::fatal(format!("Invalid value {condition} for configuration filter.condition: {e}"))
        };
        let target_text = split_trailing_filter(&condition).map(|(path, _)| path.to_string()).unwrap_or_else(|| condition.clone());
        self.definite = !(target_text.contains(['*', '?', ':', ',']) || target_text.contains(".."));
        let (target, filter) = match split_trailing_filter(&condition) {
            Some((path, filter)) => (
                JsonPath::parse(if path.is_empty() { "$" } else { path }).map_err(invalid)?,
                Some(JsonPath::parse(&filter).map_err(invalid)?),
            ),
            None => (JsonPath::parse(&condition).map_err(invalid)?, None),
        };
        self.target = Some(target);
        self.filter = filter;
        self.include = parsed.string("filter.type") == "include";
        self.missing = match parsed.string("missing.or.null.behavior").as_str() {
            "include" => Missing::Include,
            "exclude" => Missing::Exclude,
            _ => Missing::Fail,
        };
        self.condition = condition;
        Ok(())
    }

    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let (_, value) = self.side.parts(record);
        let json = value.to_json();
        let target = self.target.as_ref().expect("configured");
        let found: Vec<&serde_json::Value> = target.query(&json).all().into_iter().filter(|v| !v.is_null()).collect();
        let keep = |matched: bool| if matched == self.include { Transformed::Keep } else { Transformed::Drop };
        if found.is_empty() && !self.definite {
            return Ok(keep(false));
        }
        if found.is_empty() {
            return match self.missing {
                Missing::Fail => Err(ConnectError::data(format!(
                    "the record has no {} at the path of filter.condition {} (missing.or.null.behavior=fail)",
                    match self.side {
                        Side::Key => "key",
                        Side::Value => "value",
                    },
                    self.condition
                ))),
                Missing::Include => Ok(Transformed::Keep),
                Missing::Exclude => Ok(Transformed::Drop),
            };
        }
        let matched = match &self.filter {
            None => true,
            Some(filter) => found.into_iter().any(|node| match node {
                // Jayway: a filter on an object tests the object itself.
                serde_json::Value::Object(_) => !filter.query(&serde_json::Value::Array(vec![node.clone()])).all().is_empty(),
                other => !filter.query(other).all().is_empty(),
            }),
        };
        Ok(keep(matched))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::Value;

    fn filter(side: Side, pairs: &[(&str, &str)]) -> ConfluentFilter {
        let mut f = ConfluentFilter::new(side);
        f.configure(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap();
        f
    }

    fn record(json: serde_json::Value) -> RecordData {
        RecordData::new("t".to_string(), None, Value::from_json(&json))
    }

    fn kept(f: &ConfluentFilter, json: serde_json::Value) -> bool {
        matches!(f.apply(&mut record(json)).unwrap(), Transformed::Keep)
    }

    #[test]
    fn a_trailing_filter_tests_the_object_itself_as_jayway_does() {
        let cats = filter(Side::Value, &[("filter.condition", "$[?(@.objects.Cat > 0)]")]);
        assert!(kept(&cats, serde_json::json!({"objects": {"Cat": 1}})));
        assert!(!kept(&cats, serde_json::json!({"objects": {"Dog": 2}})), "no Cat: undefined, no match");
        assert!(!kept(&cats, serde_json::json!({"objects": {"Cat": 0}})));
        // Confluent's documented example, include and exclude.
        let nested = [("filter.condition", r#"$.key[?(@.nestedKey == "value1" || @.nestedKey == "value2")]"#)];
        let f = filter(Side::Value, &nested);
        assert!(kept(&f, serde_json::json!({"key": {"nestedKey": "value2"}})));
        assert!(!kept(&f, serde_json::json!({"key": {"nestedKey": "value3"}})));
        let f = filter(Side::Value, &[nested[0], ("filter.type", "exclude")]);
        assert!(!kept(&f, serde_json::json!({"key": {"nestedKey": "value1"}})));
        // On an array, the filter tests its items.
        let any_red = filter(Side::Value, &[("filter.condition", "$.items[?(@.colour == 'red')]")]);
        assert!(kept(&any_red, serde_json::json!({"items": [{"colour": "blue"}, {"colour": "red"}]})));
        assert!(!kept(&any_red, serde_json::json!({"items": [{"colour": "blue"}]})));
    }

    #[test]
    fn a_missing_path_fails_or_includes_or_excludes_as_configured() {
        let condition = ("filter.condition", "$.key[?(@.nestedKey == 'x')]");
        let fail = filter(Side::Value, &[condition]);
        let err = fail.apply(&mut record(serde_json::json!({"other": 1}))).unwrap_err();
        assert_eq!(err.kind(), connect_core::ErrorKind::Data);
        assert!(kept(&filter(Side::Value, &[condition, ("missing.or.null.behavior", "include")]), serde_json::json!({"key": null})));
        assert!(!kept(&filter(Side::Value, &[condition, ("missing.or.null.behavior", "exclude")]), serde_json::json!({})));
    }

    #[test]
    fn a_path_without_filter_matches_when_it_exists_and_keys_work_too() {
        let f = filter(Side::Key, &[("filter.condition", "$.id")]);
        let mut r = record(serde_json::json!({}));
        r.key = Value::from_json(&serde_json::json!({"id": 7}));
        assert!(matches!(f.apply(&mut r).unwrap(), Transformed::Keep));
    }

    #[test]
    fn finding_nothing_through_a_wildcard_or_inner_filter_is_a_non_match_not_a_missing_field() {
        let f = filter(Side::Value, &[("filter.condition", "$.detections[?(@.label == 'Cat')].score")]);
        assert!(!kept(&f, serde_json::json!({"detections": [{"label": "Dog", "score": 0.7}]})), "no error with the default fail");
        assert!(kept(&f, serde_json::json!({"detections": [{"label": "Cat", "score": 0.9}]})));
        let anywhere = filter(Side::Value, &[("filter.condition", "$..[?(@.label == 'Cat')]")]);
        assert!(kept(&anywhere, serde_json::json!({"detections": [{"label": "Cat"}]})));
        assert!(!kept(&anywhere, serde_json::json!({"detections": []})));
    }

    #[test]
    fn an_invalid_condition_is_refused_at_configure() {
        let mut f = ConfluentFilter::new(Side::Value);
        let config = [("filter.condition".to_string(), "$[?(@.a ==".to_string())].into_iter().collect();
        assert!(f.configure(&config).unwrap_err().to_string().contains("filter.condition"));
    }

    #[test]
    fn trailing_filters_are_split_outside_quotes_and_brackets() {
        assert_eq!(split_trailing_filter("$[?(@.a > 0)]"), Some(("$", "$[?(@.a > 0)]".to_string())));
        assert_eq!(split_trailing_filter("$.k[?(@.n == ']')]"), Some(("$.k", "$[?(@.n == ']')]".to_string())));
        assert_eq!(split_trailing_filter("$.a[0]"), None);
        assert_eq!(split_trailing_filter("$..[?(@.a > 0)]"), None, "kept whole");
        assert_eq!(split_trailing_filter("$.a"), None);
    }
}
