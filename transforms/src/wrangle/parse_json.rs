use super::{put_back, take_fields, text_of};
use crate::fields::rebuild;
use connect_core::transform::{Transformation, Transformed};
use connect_core::{Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, Value};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrangle::test_support::{configured, map, record};

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
}
