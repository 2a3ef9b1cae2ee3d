//! `Cast$Key` / `$Value`: cast fields (or the whole key/value) to int8..int64, float32/64, boolean or
//! string, e.g. `spec=capacity:int32,empty_places:int32` or `spec=string`.

use crate::extract_field::Side;
use connect_core::transform::{Transformation, Transformed};
use connect_core::{
    Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, RecordData, Result, Schema, SchemaRef, SchemaType, Struct, Value,
};

pub struct Cast {
    side: Side,
    /// `None` field: the whole key or value.
    casts: Vec<(Option<String>, SchemaType)>,
}

impl Cast {
    pub fn new(side: Side) -> Self {
        Cast { side, casts: Vec::new() }
    }
}

fn target_type(name: &str) -> Option<SchemaType> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "int8" => SchemaType::Int8,
        "int16" => SchemaType::Int16,
        "int32" => SchemaType::Int32,
        "int64" => SchemaType::Int64,
        "float32" => SchemaType::Float32,
        "float64" => SchemaType::Float64,
        "boolean" => SchemaType::Boolean,
        "string" => SchemaType::String,
        _ => return None,
    })
}

/// Cast one primitive value; a value that cannot be cast is a data error naming it.
pub fn cast_value(value: &Value, to: SchemaType) -> Result<Value> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let fail = || ConnectError::data(format!("Cast: cannot cast {} value {} to {}", value.type_name(), value, to.json_name()));
    let as_f64 = || -> Result<f64> {
        match value {
            Value::String(s) => s.trim().parse::<f64>().map_err(|_| fail()),
            Value::Boolean(b) => Ok(if *b { 1.0 } else { 0.0 }),
            v => v.as_f64().ok_or_else(fail),
        }
    };
    let as_i64 = || -> Result<i64> {
        match value {
            Value::String(s) => s.trim().parse::<i64>().or_else(|_| s.trim().parse::<f64>().map(|f| f.trunc() as i64)).map_err(|_| fail()),
            Value::Boolean(b) => Ok(i64::from(*b)),
            Value::Float32(_) | Value::Float64(_) => as_f64().map(|f| f.trunc() as i64),
            v => v.as_i64().ok_or_else(fail),
        }
    };
    let ranged = |min: i64, max: i64| -> Result<i64> {
        let v = as_i64()?;
        if v < min || v > max {
            return Err(fail());
        }
        Ok(v)
    };
    Ok(match to {
        SchemaType::Int8 => Value::Int8(ranged(i8::MIN as i64, i8::MAX as i64)? as i8),
        SchemaType::Int16 => Value::Int16(ranged(i16::MIN as i64, i16::MAX as i64)? as i16),
        SchemaType::Int32 => Value::Int32(ranged(i32::MIN as i64, i32::MAX as i64)? as i32),
        SchemaType::Int64 => Value::Int64(as_i64()?),
        SchemaType::Float32 => Value::Float32(as_f64()? as f32),
        SchemaType::Float64 => Value::Float64(as_f64()?),
        SchemaType::Boolean => match value {
            Value::Boolean(b) => Value::Boolean(*b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                _ => return Err(fail()),
            },
            v => Value::Boolean(v.as_f64().ok_or_else(fail)? != 0.0),
        },
        SchemaType::String => match value {
            Value::Struct(_) | Value::Map(_) | Value::Array(_) | Value::Bytes(_) => return Err(fail()),
            v => Value::String(v.to_string()),
        },
        _ => return Err(fail()),
    })
}

fn cast_schema(old: &SchemaRef, to: SchemaType) -> SchemaRef {
    let mut s = Schema::new(to);
    s.optional = old.optional;
    s.into_ref()
}

impl Transformation for Cast {
    fn config_def(&self) -> ConfigDef {
        ConfigDef::new().define(ConfigKey::required(
            "spec",
            ConfigType::List,
            Importance::High,
            "List of fields and the type to cast them to of the form field1:type,field2:type to cast fields of Maps or Structs. A single type to cast the entire value. Valid types are int8, int16, int32, int64, float32, float64, boolean, and string.",
        ))
    }
    fn configure(&mut self, config: &Config) -> Result<()> {
        let spec = self.config_def().parse(config)?.list("spec");
        if spec.is_empty() {
            return Err(ConnectError::fatal("Invalid value for configuration spec: Must specify at least one field to cast."));
        }
        self.casts = spec
            .iter()
            .map(|item| {
                let (field, ty) = match item.split_once(':') {
                    Some((f, t)) => (Some(f.trim().to_string()), t),
                    None => (None, item.as_str()),
                };
                let ty = target_type(ty)
                    .ok_or_else(|| ConnectError::fatal(format!("Invalid value {item} for configuration spec: invalid type {ty}")))?;
                Ok((field, ty))
            })
            .collect::<Result<_>>()?;
        if self.casts.iter().any(|(f, _)| f.is_none()) && self.casts.len() > 1 {
            return Err(ConnectError::fatal("Invalid value for configuration spec: a whole-value cast must be the only entry"));
        }
        Ok(())
    }
    fn apply(&self, record: &mut RecordData) -> Result<Transformed> {
        let (schema_slot, value_slot) = self.side.parts(record);
        if let [(None, to)] = self.casts.as_slice() {
            *value_slot = cast_value(value_slot, *to)?;
            if let Some(s) = schema_slot.as_ref() {
                *schema_slot = Some(cast_schema(s, *to));
            }
            return Ok(Transformed::Keep);
        }
        let target = |name: &str| self.casts.iter().find(|(f, _)| f.as_deref() == Some(name)).map(|(_, t)| *t);
        match value_slot {
            Value::Null => {}
            Value::Map(entries) if schema_slot.is_none() => {
                for (k, v) in entries.iter_mut() {
                    if let Some(to) = k.as_str().and_then(target) {
                        *v = cast_value(v, to)?;
                    }
                }
            }
            Value::Struct(st) => {
                let mut out = Struct::with_capacity(st.len());
                for (k, v) in st.iter() {
                    out.put(
                        k.clone(),
                        match target(k) {
                            Some(to) => cast_value(v, to)?,
                            None => v.clone(),
                        },
                    );
                }
                *st = out;
                if let Some(s) = schema_slot.as_ref() {
                    let fields = s.fields.iter().map(|f| {
                        (
                            f.name.clone(),
                            match target(&f.name) {
                                Some(to) => cast_schema(&f.schema, to),
                                None => f.schema.clone(),
                            },
                        )
                    });
                    let mut new = Schema::structure(fields);
                    new.optional = s.optional;
                    new.name = s.name.clone();
                    *schema_slot = Some(new.into_ref());
                }
            }
            other => {
                return Err(ConnectError::data(format!(
                    "Cast: only Map or Struct values can have fields cast, found {}",
                    other.type_name()
                )))
            }
        }
        Ok(Transformed::Keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(spec: &str) -> Cast {
        let mut c = Cast::new(Side::Value);
        c.configure(&[("spec".to_string(), spec.to_string())].into_iter().collect()).unwrap();
        c
    }

    #[test]
    fn car_park_fields_become_numbers() {
        let json: serde_json::Value =
            serde_json::from_str(r#"{"name":"Westgate","capacity":"116","empty_places":"89","lat":"53.796291"}"#).unwrap();
        let mut r = RecordData::new("carparks", None, Value::from_json(&json));
        configured("capacity:int32,empty_places:int32,lat:float64").apply(&mut r).unwrap();
        assert_eq!(r.value.get_field("capacity"), Some(&Value::Int32(116)));
        assert_eq!(r.value.get_field("lat"), Some(&Value::Float64(53.796291)));
        assert_eq!(r.value.get_field("name"), Some(&Value::from("Westgate")));
    }

    #[test]
    fn whole_values_ranges_and_errors() {
        let mut r = RecordData::new("t", Some(connect_core::schemas::int64()), Value::Int64(300));
        configured("string").apply(&mut r).unwrap();
        assert_eq!(r.value, Value::from("300"));
        assert_eq!(r.value_schema.unwrap().kind, SchemaType::String);
        let mut big = RecordData::new("t", None, Value::Int64(300));
        assert_eq!(configured("int8").apply(&mut big).unwrap_err().kind(), connect_core::ErrorKind::Data);
        let mut text = RecordData::new("t", None, Value::from("many"));
        assert!(configured("int32").apply(&mut text).is_err());
        let mut bad = Cast::new(Side::Value);
        assert!(bad.configure(&[("spec".to_string(), "a:decimal".to_string())].into_iter().collect()).is_err());
        assert!(bad.configure(&[("spec".to_string(), "int8,a:int8".to_string())].into_iter().collect()).is_err());
    }
}
