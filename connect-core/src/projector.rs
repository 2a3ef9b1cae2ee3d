//! Kafka Connect's `SchemaProjector`: a value written with one schema, rewritten to fit another version of
//! it. Sinks that keep one schema per file or table (the S3 sink's `schema.compatibility`) use it to write records
//! of an older (BACKWARD) or newer (FORWARD) schema version with the current one.
//!
//! The rules are Kafka's: types must match or be a numeric promotion (int8 → int16 → int32 → int64 → float32 →
//! float64), names and parameters must be equal; struct fields are taken by name, a field the source lacks
//! takes its default, or null if optional, and source fields the target lacks are dropped; an optional source
//! into a required target needs the target's default.

use crate::data::{Schema, SchemaType, Struct, Value};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProjectError {
    #[error("Schema type mismatch. source type: {from:?} and target type: {to:?}")]
    TypeMismatch { from: SchemaType, to: SchemaType },
    #[error("Schema name mismatch. source name: {from:?} and target name: {to:?}")]
    NameMismatch { from: Option<String>, to: Option<String> },
    #[error("Schema parameters not equal. source parameters: {from} and target parameters: {to}")]
    ParametersMismatch { from: String, to: String },
    #[error("Writer schema is optional, however, target schema does not provide a default value.")]
    NoDefault,
    #[error("Required field `{0}` is missing from source schema")]
    MissingField(String),
    #[error("Error projecting {field}: {cause}")]
    InField { field: String, cause: Box<ProjectError> },
    #[error("a {value} value does not fit its {schema:?} schema")]
    ValueMismatch { value: &'static str, schema: SchemaType },
}

/// `value`, written with `source`, as a value of `target`.
pub fn project(source: &Schema, value: &Value, target: &Schema) -> Result<Value, ProjectError> {
    check_maybe_compatible(source, target)?;
    if source.optional && !target.optional {
        let default = target.default.as_ref().ok_or(ProjectError::NoDefault)?;
        return if value.is_null() { Ok(default.clone()) } else { project_required(source, value, target) };
    }
    if value.is_null() {
        return Ok(Value::Null);
    }
    project_required(source, value, target)
}

fn check_maybe_compatible(source: &Schema, target: &Schema) -> Result<(), ProjectError> {
    if source.kind != target.kind && !promotable(source.kind, target.kind) {
        return Err(ProjectError::TypeMismatch { from: source.kind, to: target.kind });
    }
    if source.name != target.name {
        return Err(ProjectError::NameMismatch { from: source.name.clone(), to: target.name.clone() });
    }
    if source.parameters != target.parameters {
        return Err(ProjectError::ParametersMismatch { from: format!("{:?}", source.parameters), to: format!("{:?}", target.parameters) });
    }
    Ok(())
}

fn promotable(source: SchemaType, target: SchemaType) -> bool {
    use SchemaType::*;
    matches!(
        (source, target),
        (Int8, Int16 | Int32 | Int64 | Float32 | Float64)
            | (Int16, Int32 | Int64 | Float32 | Float64)
            | (Int32, Int64 | Float32 | Float64)
            | (Int64, Float32 | Float64)
            | (Float32, Float64)
    )
}

fn project_required(source: &Schema, value: &Value, target: &Schema) -> Result<Value, ProjectError> {
    let mismatch = || ProjectError::ValueMismatch { value: value.type_name(), schema: source.kind };
    match target.kind {
        SchemaType::Struct => {
            let Value::Struct(from) = value else { return Err(mismatch()) };
            let mut projected = Struct::new();
            for field in &target.fields {
                match source.field(&field.name) {
                    Some(source_field) => {
                        // As Kafka's `Struct.get`: a null field reads as its schema's default.
                        let field_value = match from.get(&field.name) {
                            Some(v) if !v.is_null() => v,
                            _ => source_field.schema.default.as_ref().unwrap_or(&Value::Null),
                        };
                        let value = project(&source_field.schema, field_value, &field.schema)
                            .map_err(|cause| ProjectError::InField { field: field.name.clone(), cause: Box::new(cause) })?;
                        projected.put(field.name.clone(), value);
                    }
                    // A field the source lacks: its default first, as in Kafka's SchemaProjector, else null if
                    // optional.
                    None => match (&field.schema.default, field.schema.optional) {
                        (Some(default), _) => {
                            projected.put(field.name.clone(), default.clone());
                        }
                        (None, true) => {
                            projected.put(field.name.clone(), Value::Null);
                        }
                        (None, false) => return Err(ProjectError::MissingField(field.name.clone())),
                    },
                }
            }
            Ok(Value::Struct(projected))
        }
        SchemaType::Array => {
            let Value::Array(items) = value else { return Err(mismatch()) };
            let (Some(from), Some(to)) = (source.items(), target.items()) else { return Err(mismatch()) };
            items.iter().map(|item| project(from, item, to)).collect::<Result<_, _>>().map(Value::Array)
        }
        SchemaType::Map => {
            let Value::Map(entries) = value else { return Err(mismatch()) };
            let (Some(from_keys), Some(from_values), Some(to_keys), Some(to_values)) =
                (&source.key_schema, &source.value_schema, &target.key_schema, &target.value_schema)
            else {
                return Err(mismatch());
            };
            entries
                .iter()
                .map(|(k, v)| Ok((project(from_keys, k, to_keys)?, project(from_values, v, to_values)?)))
                .collect::<Result<_, _>>()
                .map(Value::Map)
        }
        _ => project_primitive(value, target.kind).ok_or_else(mismatch),
    }
}

/// A primitive as `target`'s type: the same value, or a numeric promotion.
fn project_primitive(value: &Value, target: SchemaType) -> Option<Value> {
    use SchemaType as T;
    let widened = match (value, target) {
        (Value::Int8(v), T::Int16) => Value::Int16(*v as i16),
        (Value::Int8(v), T::Int32) => Value::Int32(*v as i32),
        (Value::Int8(v), T::Int64) => Value::Int64(*v as i64),
        (Value::Int8(v), T::Float32) => Value::Float32(*v as f32),
        (Value::Int8(v), T::Float64) => Value::Float64(*v as f64),
        (Value::Int16(v), T::Int32) => Value::Int32(*v as i32),
        (Value::Int16(v), T::Int64) => Value::Int64(*v as i64),
        (Value::Int16(v), T::Float32) => Value::Float32(*v as f32),
        (Value::Int16(v), T::Float64) => Value::Float64(*v as f64),
        (Value::Int32(v), T::Int64) => Value::Int64(*v as i64),
        (Value::Int32(v), T::Float32) => Value::Float32(*v as f32),
        (Value::Int32(v), T::Float64) => Value::Float64(*v as f64),
        (Value::Int64(v), T::Float32) => Value::Float32(*v as f32),
        (Value::Int64(v), T::Float64) => Value::Float64(*v as f64),
        (Value::Float32(v), T::Float64) => Value::Float64(*v as f64),
        (v, kind) if same_kind(v, kind) => v.clone(),
        _ => return None,
    };
    Some(widened)
}

fn same_kind(value: &Value, kind: SchemaType) -> bool {
    use SchemaType as T;
    matches!(
        (value, kind),
        (Value::Int8(_), T::Int8)
            | (Value::Int16(_), T::Int16)
            | (Value::Int32(_), T::Int32)
            | (Value::Int64(_), T::Int64)
            | (Value::Float32(_), T::Float32)
            | (Value::Float64(_), T::Float64)
            | (Value::Boolean(_), T::Boolean)
            | (Value::String(_), T::String)
            | (Value::Bytes(_), T::Bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn s(kind: SchemaType) -> Arc<Schema> {
        Schema::new(kind).into_ref()
    }

    fn version(fields: Vec<(&str, Arc<Schema>)>) -> Schema {
        Schema::structure(fields.into_iter().map(|(n, s)| (n.to_string(), s))).named("Movement")
    }

    #[test]
    fn an_older_struct_gets_the_new_fields_defaults_and_loses_the_dropped_ones() {
        let mut delay = Schema::new(SchemaType::Int32);
        delay.default = Some(Value::Int32(0));
        let v1 = version(vec![("id", s(SchemaType::Int32)), ("old", s(SchemaType::String)), ("score", s(SchemaType::Float32))]);
        let v2 = version(vec![
            ("id", s(SchemaType::Int64)),
            ("score", s(SchemaType::Float64)),
            ("note", Schema::new(SchemaType::String).optional().into_ref()),
            ("delay", delay.into_ref()),
        ]);
        let mut record = Struct::new();
        record.put("id", Value::Int32(7)).put("old", Value::String("x".into())).put("score", Value::Float32(0.5));
        let Value::Struct(projected) = project(&v1, &Value::Struct(record), &v2).unwrap() else { panic!("a struct") };
        assert_eq!(projected.get("id"), Some(&Value::Int64(7)), "int32 promoted to int64");
        assert_eq!(projected.get("score"), Some(&Value::Float64(0.5)));
        assert_eq!(projected.get("note"), Some(&Value::Null), "a new optional field is null");
        assert_eq!(projected.get("delay"), Some(&Value::Int32(0)), "a new required field takes its default");
        assert_eq!(projected.get("old"), None, "a field the target lacks is dropped");
    }

    #[test]
    fn a_missing_optional_field_takes_its_default_before_null() {
        let mut currency = Schema::new(SchemaType::String).optional();
        currency.default = Some(Value::String("EUR".into()));
        let v1 = version(vec![("id", s(SchemaType::Int32))]);
        let v2 = version(vec![("id", s(SchemaType::Int32)), ("currency", currency.into_ref())]);
        let mut record = Struct::new();
        record.put("id", Value::Int32(1));
        let Value::Struct(projected) = project(&v1, &Value::Struct(record), &v2).unwrap() else { panic!("a struct") };
        assert_eq!(projected.get("currency"), Some(&Value::String("EUR".into())));
    }

    #[test]
    fn what_cannot_be_projected_is_named() {
        let v1 = version(vec![("id", s(SchemaType::Int64))]);
        let narrower = version(vec![("id", s(SchemaType::Int32))]);
        let mut record = Struct::new();
        record.put("id", Value::Int64(1));
        let err = project(&v1, &Value::Struct(record.clone()), &narrower).unwrap_err();
        assert_eq!(err.to_string(), "Error projecting id: Schema type mismatch. source type: Int64 and target type: Int32");
        let required = version(vec![("id", s(SchemaType::Int64)), ("must", s(SchemaType::String))]);
        assert_eq!(project(&v1, &Value::Struct(record.clone()), &required).unwrap_err(), ProjectError::MissingField("must".into()));
        let renamed = Schema::structure([("id".to_string(), s(SchemaType::Int64))]).named("Other");
        assert!(matches!(project(&v1, &Value::Struct(record), &renamed), Err(ProjectError::NameMismatch { .. })));
        let optional = Schema::new(SchemaType::String).optional();
        assert_eq!(project(&optional, &Value::Null, &Schema::new(SchemaType::String)).unwrap_err(), ProjectError::NoDefault);
    }

    #[test]
    fn arrays_and_maps_are_projected_item_by_item() {
        let from = Schema::array(s(SchemaType::Int16));
        let to = Schema::array(s(SchemaType::Float64));
        let value = Value::Array(vec![Value::Int16(1), Value::Int16(2)]);
        assert_eq!(project(&from, &value, &to).unwrap(), Value::Array(vec![Value::Float64(1.0), Value::Float64(2.0)]));
        let from = Schema::map(s(SchemaType::String), s(SchemaType::Int32));
        let to = Schema::map(s(SchemaType::String), s(SchemaType::Int64));
        let value = Value::Map(vec![(Value::String("a".into()), Value::Int32(3))]);
        assert_eq!(project(&from, &value, &to).unwrap(), Value::Map(vec![(Value::String("a".into()), Value::Int64(3))]));
    }
}
