use super::{find, put, with_fields};
use crate::fields::rebuild;
use connect_core::transform::{Transformation, Transformed};
use connect_core::{
    schemas, Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, Schema, SchemaType, Validator,
};

/// `BuildStruct$Value`: `field` = a struct of existing fields, `fields=lat=latitude,lon=longitude` (or just
/// `latitude` to keep the name). `remove.sources=true` drops the source fields.
#[derive(Default)]
pub struct BuildStruct {
    field: String,
    parts: Vec<(String, String)>,
    remove_sources: bool,
}

impl Transformation for BuildStruct {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::required("field", ConfigType::String, Importance::High, "Name of the new struct field.")
                    .validator(Validator::NonEmptyString),
            )
            .define(
                ConfigKey::required(
                    "fields",
                    ConfigType::List,
                    Importance::High,
                    "Its fields: `name=source` or `source`, comma-separated.",
                )
                .validator(Validator::NonEmptyList),
            )
            .define(ConfigKey::new("remove.sources", ConfigType::Boolean, Some("false"), Importance::Low, "Drop the source fields."))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.field = parsed.string("field");
        self.parts = parsed
            .list("fields")
            .iter()
            .map(|p| match p.split_once('=') {
                Some((name, source)) => (name.trim().to_string(), source.trim().to_string()),
                None => (p.trim().to_string(), p.trim().to_string()),
            })
            .collect();
        self.remove_sources = parsed.boolean("remove.sources");
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let schemaless = record.value_schema.is_none();
        with_fields(record, "BuildStruct", |fields| {
            let mut parts = Vec::with_capacity(self.parts.len());
            for (name, source) in &self.parts {
                let (_, schema, value) = find(fields, source)
                    .ok_or_else(|| ConnectError::data(format!("BuildStruct {}: the record has no field '{source}'", self.field)))?;
                parts.push((name.clone(), schema.clone(), value.clone()));
            }
            if self.remove_sources {
                fields.retain(|(n, _, _)| !self.parts.iter().any(|(_, s)| s == n));
            }
            let (schema, value) = if schemaless {
                rebuild(None, parts)
            } else {
                let (s, v) = rebuild(Some(&Schema::new(SchemaType::Struct).optional().into_ref()), parts);
                (s, v)
            };
            put(fields, &self.field, schema.unwrap_or_else(schemas::optional_string), value);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrangle::test_support::{configured, map, record};
    use connect_core::Value;

    #[test]
    fn build_struct_from_fields() {
        let t: BuildStruct = configured(&[("field", "LOCATION"), ("fields", "lat=latitude,lon=longitude"), ("remove.sources", "true")]);
        let mut r =
            record(map(&[("latitude", Value::Float64(53.79)), ("longitude", Value::Float64(-1.75)), ("name", Value::String("W".into()))]));
        t.apply(&mut r).unwrap();
        assert_eq!(r.value.to_json(), serde_json::json!({"name": "W", "LOCATION": {"lat": 53.79, "lon": -1.75}}));
        let mut missing = record(map(&[("latitude", Value::Float64(1.0))]));
        assert!(t.apply(&mut missing).unwrap_err().to_string().contains("no field 'longitude'"));
    }
}
