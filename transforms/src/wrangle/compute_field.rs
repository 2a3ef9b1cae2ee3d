use super::{put, with_fields};
use connect_core::transform::{Transformation, Transformed};
use connect_core::{
    Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, Schema, SchemaRef, SchemaType, Validator, Value,
};

/// The output type of `ComputeField`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum OutputType {
    Auto,
    Int64,
    Float64,
    String,
    Boolean,
}

/// `ComputeField$Value`: `field` = the value of `expression` over the value's top-level fields, in the
/// [evalexpr 11](https://docs.rs/evalexpr/11.3.1) language: arithmetic, comparisons, `&&`/`||`, `if(c, a, b)`,
/// string concatenation with `+`, `str::to_uppercase(s)`, `math::...`. With `field.type=float64` every integer
/// field enters the expression as a float, so `(capacity - empty_places) / capacity * 100` divides as
/// people expect; with other types integers stay integers.
pub struct ComputeField {
    field: String,
    expression: Option<evalexpr::Node>,
    source: String,
    output: OutputType,
}

impl Default for ComputeField {
    fn default() -> Self {
        ComputeField { field: String::new(), expression: None, source: String::new(), output: OutputType::Auto }
    }
}

impl Transformation for ComputeField {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::required("field", ConfigType::String, Importance::High, "Name of the computed field.")
                    .validator(Validator::NonEmptyString),
            )
            .define(
                ConfigKey::required(
                    "expression",
                    ConfigType::String,
                    Importance::High,
                    "Expression over the value's fields (evalexpr syntax).",
                )
                .validator(Validator::NonEmptyString),
            )
            .define(
                ConfigKey::new(
                    // Not `type`: `transforms.<alias>.type` is the transform's class.
                    "field.type",
                    ConfigType::String,
                    Some("auto"),
                    Importance::Medium,
                    "Type of the field: auto (from the result), int64, float64, string or boolean.",
                )
                .validator(Validator::OneOf(vec!["auto", "int64", "float64", "string", "boolean"])),
            )
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let parsed = self.config_def().parse(config)?;
        self.field = parsed.string("field");
        self.source = parsed.string("expression");
        self.expression = Some(
            evalexpr::build_operator_tree(&self.source)
                .map_err(|e| ConnectError::fatal(format!("Invalid value {} for configuration expression: {e}", self.source)))?,
        );
        self.output = match parsed.string("field.type").as_str() {
            "int64" => OutputType::Int64,
            "float64" => OutputType::Float64,
            "string" => OutputType::String,
            "boolean" => OutputType::Boolean,
            _ => OutputType::Auto,
        };
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        use evalexpr::{ContextWithMutableVariables, HashMapContext, Value as E};
        let expression = self.expression.as_ref().expect("configured");
        let floats = self.output == OutputType::Float64;
        with_fields(record, "ComputeField", |fields| {
            let mut context = HashMapContext::new();
            for (name, _, value) in fields.iter() {
                let v = match value {
                    Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => {
                        let i = value.as_i64().expect("integer");
                        if floats {
                            E::Float(i as f64)
                        } else {
                            E::Int(i)
                        }
                    }
                    Value::Float32(f) => E::Float(f64::from(*f)),
                    Value::Float64(f) => E::Float(*f),
                    Value::String(s) => E::String(s.clone()),
                    Value::Boolean(b) => E::Boolean(*b),
                    Value::Null => E::Empty,
                    _ => continue,
                };
                let _ = context.set_value(name.clone(), v);
            }
            let result = expression
                .eval_with_context(&context)
                .map_err(|e| ConnectError::data(format!("ComputeField {}: `{}` failed: {e}", self.field, self.source)))?;
            let (schema, value) = self.typed(result)?;
            put(fields, &self.field, schema, value);
            Ok(())
        })
    }
}

impl ComputeField {
    fn typed(&self, result: evalexpr::Value) -> Result<(SchemaRef, Value)> {
        use evalexpr::Value as E;
        let wrong = |r: &E| {
            ConnectError::data(format!("ComputeField {}: `{}` gave {r}, which is not a {:?}", self.field, self.source, self.output))
        };
        let float = |f: f64| {
            if f.is_finite() {
                Ok(Value::Float64(f))
            } else {
                Err(ConnectError::data(format!("ComputeField {}: `{}` gave {f} (division by zero?)", self.field, self.source)))
            }
        };
        let optional = |kind| Schema::new(kind).optional().into_ref();
        Ok(match (self.output, &result) {
            (_, E::Empty) => (optional(self.auto_kind(&result)), Value::Null),
            (OutputType::Auto | OutputType::Int64, E::Int(i)) => (optional(SchemaType::Int64), Value::Int64(*i)),
            (OutputType::Int64, E::Float(f)) if f.fract() == 0.0 && f.is_finite() => (optional(SchemaType::Int64), Value::Int64(*f as i64)),
            (OutputType::Auto | OutputType::Float64, E::Float(f)) => (optional(SchemaType::Float64), float(*f)?),
            (OutputType::Float64, E::Int(i)) => (optional(SchemaType::Float64), Value::Float64(*i as f64)),
            (OutputType::Auto | OutputType::String, E::String(s)) => (optional(SchemaType::String), Value::String(s.clone())),
            (OutputType::String, other) => (optional(SchemaType::String), Value::String(other.to_string())),
            (OutputType::Auto | OutputType::Boolean, E::Boolean(b)) => (optional(SchemaType::Boolean), Value::Boolean(*b)),
            (_, other) => return Err(wrong(other)),
        })
    }

    fn auto_kind(&self, _result: &evalexpr::Value) -> SchemaType {
        match self.output {
            OutputType::Int64 => SchemaType::Int64,
            OutputType::Float64 => SchemaType::Float64,
            OutputType::Boolean => SchemaType::Boolean,
            OutputType::String | OutputType::Auto => SchemaType::String,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrangle::test_support::{cfg, configured, map, record};
    use connect_core::ErrorKind;

    #[test]
    fn compute_field_divides_as_people_expect_and_concatenates() {
        let t: ComputeField =
            configured(&[("field", "PCT_FULL"), ("expression", "(capacity - empty_places) / capacity * 100"), ("field.type", "float64")]);
        let mut r = record(map(&[("capacity", Value::Int32(116)), ("empty_places", Value::Int32(89))]));
        t.apply(&mut r).unwrap();
        let pct = r.value.get_field("PCT_FULL").unwrap().as_f64().unwrap();
        assert!((pct - 23.275862068965516).abs() < 1e-9, "{pct}");

        let t: ComputeField = configured(&[("field", "label"), ("expression", r#"name + " (" + status + ")""#)]);
        let mut r = record(map(&[("name", Value::String("Westgate".into())), ("status", Value::String("Spaces".into()))]));
        t.apply(&mut r).unwrap();
        assert_eq!(r.value.get_field("label").unwrap().as_str(), Some("Westgate (Spaces)"));

        let t: ComputeField = configured(&[("field", "pct"), ("expression", "used / capacity"), ("field.type", "float64")]);
        let mut zero = record(map(&[("used", Value::Int32(1)), ("capacity", Value::Int32(0))]));
        let e = t.apply(&mut zero).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Data);
        let mut missing = record(map(&[("used", Value::Int32(1))]));
        assert_eq!(t.apply(&mut missing).unwrap_err().kind(), ErrorKind::Data);
        let mut wrong_types = record(map(&[("used", Value::String("x".into())), ("capacity", Value::Int32(2))]));
        assert_eq!(t.apply(&mut wrong_types).unwrap_err().kind(), ErrorKind::Data);
        let mut bad = ComputeField::default();
        assert!(bad.configure(&cfg(&[("field", "x"), ("expression", "(1 +")])).is_err());
    }
}
