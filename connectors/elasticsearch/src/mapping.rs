//! Index mappings from record schemas (`schema.ignore=false`), as Confluent's connector makes them: logical
//! Timestamp/Date/Time as `date`, Decimal as `double`, structs as objects with properties, arrays as their
//! items' type; strings as `text` with a `keyword` sub-field (what dynamic mapping would give them).

use connect_core::{logical, Schema, SchemaType};
use serde_json::{json, Value as Json};

/// The mapping of one field of this schema.
pub fn field_mapping(schema: &Schema) -> Json {
    match schema.name.as_deref() {
        Some(logical::TIMESTAMP | logical::DATE | logical::TIME) => return json!({"type": "date"}),
        Some(logical::DECIMAL) => return json!({"type": "double"}),
        _ => {}
    }
    match schema.kind {
        SchemaType::Int8 => json!({"type": "byte"}),
        SchemaType::Int16 => json!({"type": "short"}),
        SchemaType::Int32 => json!({"type": "integer"}),
        SchemaType::Int64 => json!({"type": "long"}),
        SchemaType::Float32 => json!({"type": "float"}),
        SchemaType::Float64 => json!({"type": "double"}),
        SchemaType::Boolean => json!({"type": "boolean"}),
        SchemaType::String => json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}),
        SchemaType::Bytes => json!({"type": "binary"}),
        SchemaType::Array => schema.items().map(|items| field_mapping(items)).unwrap_or_else(|| json!({"type": "object"})),
        SchemaType::Map => json!({"type": "object"}),
        SchemaType::Struct => mappings(schema),
    }
}

/// The `mappings` body for documents of a struct schema.
pub fn mappings(schema: &Schema) -> Json {
    let properties: serde_json::Map<String, Json> = schema.fields.iter().map(|f| (f.name.clone(), field_mapping(&f.schema))).collect();
    json!({ "properties": properties })
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_core::schemas;

    #[test]
    fn schema_types_map_to_elasticsearch_types() {
        let location = Schema::structure([("lat".to_string(), schemas::float64()), ("lon".to_string(), schemas::float64())]).into_ref();
        let schema = Schema::structure([
            ("NAME".to_string(), schemas::string()),
            ("SPACES".to_string(), schemas::int32()),
            ("TS".to_string(), logical::timestamp().into_ref()),
            ("PRICE".to_string(), logical::decimal(2).into_ref()),
            ("LOCATION".to_string(), location),
            ("TAGS".to_string(), Schema::array(schemas::string()).into_ref()),
        ]);
        let m = mappings(&schema);
        assert_eq!(m["properties"]["SPACES"]["type"], "integer");
        assert_eq!(m["properties"]["TS"]["type"], "date");
        assert_eq!(m["properties"]["PRICE"]["type"], "double");
        assert_eq!(m["properties"]["NAME"]["fields"]["keyword"]["type"], "keyword");
        assert_eq!(m["properties"]["LOCATION"]["properties"]["lat"]["type"], "double");
        assert_eq!(m["properties"]["TAGS"]["type"], "text");
    }
}
