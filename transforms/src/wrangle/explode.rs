use crate::fields::{fields_of, rebuild};
use connect_core::transform::{Transformation, Transformed};
use connect_core::{
    schemas, Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, SchemaRef, Validator, Value,
};

/// `Explode$Value`: a record whose value is an array (or has an array at the dotted path `field`) becomes one
/// record per element; with `field`, each keeps the rest of the value and has the element in the array's place.
/// An empty array gives no records (`empty=drop`) or the record with null there (`empty=null`).
#[derive(Default)]
pub struct Explode {
    path: Vec<String>,
    keep_empty: bool,
}

impl Transformation for Explode {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(ConfigKey::new(
                "field",
                ConfigType::String,
                Some(""),
                Importance::High,
                "Dotted path of the array (a.b.c); empty: the value itself is the array.",
            ))
            .define(
                ConfigKey::new(
                    "empty",
                    ConfigType::String,
                    Some("drop"),
                    Importance::Low,
                    "An empty array: drop the record, or keep it with null.",
                )
                .validator(Validator::OneOf(vec!["drop", "null"])),
            )
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.path = parsed.string("field").split('.').filter(|p| !p.is_empty()).map(str::to_string).collect();
        self.keep_empty = parsed.string("empty") == "null";
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        if record.value.is_null() {
            return Ok(Transformed::Keep);
        }
        let item_schema = array_at(&record.value_schema, &record.value, &self.path)?;
        // Take the array out of the value, so each output copies only the rest of it (not every element again).
        let Value::Array(items) = std::mem::take(slot_mut(&mut record.value, &self.path).expect("array_at found it")) else {
            unreachable!("array_at checked it is an array")
        };
        let rest = std::mem::take(&mut record.value);
        let one = |item: Value| -> Result<RecordData> {
            let (schema, value) = replace_at(&record.value_schema, rest.clone(), &self.path, item_schema.clone(), item)?;
            Ok(RecordData { value_schema: schema, value, ..record.clone() })
        };
        let keep_null = items.is_empty() && self.keep_empty;
        let outputs: Result<Vec<RecordData>> =
            if keep_null { one(Value::Null).map(|r| vec![r]) } else { items.iter().map(|item| one(item.clone())).collect() };
        match outputs {
            Err(e) => {
                // Leave the record as it was, for the DLQ.
                record.value = rest;
                *slot_mut(&mut record.value, &self.path).expect("still there") = Value::Array(items);
                Err(e)
            }
            Ok(mut out) if keep_null => {
                *record = out.pop().expect("one output");
                Ok(Transformed::Keep)
            }
            Ok(out) => Ok(Transformed::Split(out)),
        }
    }
}

/// The array at `path` (and its item schema).
/// Check that there is an array at `path`; its item schema.
fn array_at(schema: &Option<SchemaRef>, value: &Value, path: &[String]) -> Result<Option<SchemaRef>> {
    let Some((head, rest)) = path.split_first() else {
        return match value {
            Value::Array(_) => Ok(schema.as_ref().and_then(|s| s.items().cloned())),
            other => Err(ConnectError::data(format!("Explode: expected an array, found {}", other.type_name()))),
        };
    };
    let inner_schema = schema.as_ref().and_then(|s| s.field(head).map(|f| f.schema.clone()));
    let inner = value.get_field(head).ok_or_else(|| ConnectError::data(format!("Explode: the record has no field '{head}'")))?;
    array_at(&inner_schema, inner, rest)
}

/// What is at `path`, to change in place (the same lookup as [`Value::get_field`], level by level).
fn slot_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let Some((head, rest)) = path.split_first() else { return Some(value) };
    let inner = match value {
        Value::Struct(st) => st.get_mut(head)?,
        Value::Map(entries) => &mut entries.iter_mut().find(|(k, _)| k.as_str() == Some(head.as_str()))?.1,
        _ => return None,
    };
    slot_mut(inner, rest)
}

/// The value with what is at `path` replaced (its schema too, when the value has one).
fn replace_at(
    schema: &Option<SchemaRef>,
    value: Value,
    path: &[String],
    new_schema: Option<SchemaRef>,
    new_value: Value,
) -> Result<(Option<SchemaRef>, Value)> {
    let Some((head, rest)) = path.split_first() else {
        return Ok((new_schema, new_value));
    };
    let mut fields = fields_of(schema, value, "Explode")?;
    let slot = fields.iter_mut().find(|(n, _, _)| n == head).ok_or_else(|| ConnectError::data(format!("Explode: no field '{head}'")))?;
    let (s, v) = replace_at(&slot.1, std::mem::take(&mut slot.2), rest, new_schema, new_value)?;
    slot.1 = if schema.is_some() { Some(s.unwrap_or_else(schemas::optional_string)) } else { None };
    slot.2 = v;
    Ok(rebuild(schema.as_ref(), fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrangle::test_support::{configured, map, record};
    use connect_core::{ErrorKind, Schema, SchemaType, Struct};

    #[test]
    fn explode_top_level_and_nested_arrays() {
        let t: Explode = configured(&[]);
        let mut r = record(Value::Array(vec![Value::Int32(1), Value::Int32(2), Value::Int32(3)]));
        let Transformed::Split(out) = t.apply(&mut r).unwrap() else { panic!("split expected") };
        assert_eq!(out.iter().map(|r| r.value.clone()).collect::<Vec<_>>(), vec![Value::Int32(1), Value::Int32(2), Value::Int32(3)]);

        let t: Explode = configured(&[("field", "body.movements")]);
        let body = map(&[("movements", Value::Array(vec![Value::String("a".into()), Value::String("b".into())])), ("n", Value::Int32(2))]);
        let mut r = record(map(&[("header", Value::String("h".into())), ("body", body)]));
        let Transformed::Split(out) = t.apply(&mut r).unwrap() else { panic!("split expected") };
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].value.get_field("body").unwrap().get_field("movements").unwrap().as_str(), Some("b"));
        assert_eq!(out[1].value.get_field("header").unwrap().as_str(), Some("h"));

        let mut empty = record(map(&[("body", map(&[("movements", Value::Array(vec![]))]))]));
        assert_eq!(t.apply(&mut empty).unwrap(), Transformed::Split(vec![]));
        let mut not_array = record(map(&[("body", map(&[("movements", Value::Int32(1))]))]));
        assert_eq!(t.apply(&mut not_array).unwrap_err().kind(), ErrorKind::Data);
    }

    #[test]
    fn explode_keeps_schemas() {
        let items = Schema::array(schemas::int64()).into_ref();
        let schema = Schema::structure([("id".to_string(), schemas::string()), ("xs".to_string(), items)]).into_ref();
        let value: Struct =
            [("id".to_string(), Value::String("k".into())), ("xs".to_string(), Value::Array(vec![Value::Int64(5), Value::Int64(6)]))]
                .into_iter()
                .collect();
        let mut r = record(Value::Struct(value));
        r.value_schema = Some(schema);
        let t: Explode = configured(&[("field", "xs")]);
        let Transformed::Split(out) = t.apply(&mut r).unwrap() else { panic!("split expected") };
        let s = out[0].value_schema.clone().unwrap();
        assert_eq!(s.field("xs").unwrap().schema.kind, SchemaType::Int64);
        s.validate_value(&out[0].value).unwrap();
        assert_eq!(out[1].value.get_field("xs"), Some(&Value::Int64(6)));
    }
}
