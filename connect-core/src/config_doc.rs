//! Reference documentation rendered from a [`ConfigDef`], as Kafka renders its own config docs from its
//! `ConfigDef` (`toHtml`, `toRst`): the definition is the one source, so the docs cannot drift from what
//! validation accepts.

use crate::config::{ConfigDef, ConfigKey, ConfigType, DefaultValue, Importance};

impl ConfigDef {
    /// A Markdown table with a row per key: key, type, default, importance, documentation, valid values.
    /// Rows are in Kafka's doc order: required keys first, then by importance, then by name.
    pub fn to_markdown(&self) -> String {
        let mut keys: Vec<&ConfigKey> = self.keys().iter().collect();
        keys.sort_by(|a, b| {
            (!a.is_required(), importance_rank(a.importance), &a.name).cmp(&(!b.is_required(), importance_rank(b.importance), &b.name))
        });
        let mut out = String::from("| key | type | default | importance | documentation | valid values |\n|---|---|---|---|---|---|\n");
        for key in keys {
            let valid = key.validator.as_ref().and_then(|v| v.valid_values()).map(|v| markdown_cell(&v)).unwrap_or_default();
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                markdown_cell(&key.name),
                type_name(key.kind),
                default_cell(key),
                importance_name(key.importance),
                markdown_cell(&key.documentation),
                valid
            ));
        }
        out
    }
}

/// Text made safe for one cell of a Markdown table: one line, `|` escaped, `<` and `>` not read as HTML.
pub fn markdown_cell(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;")
}

fn default_cell(key: &ConfigKey) -> String {
    match &key.default {
        None => "*required*".to_string(),
        Some(DefaultValue::Null) => "null".to_string(),
        Some(DefaultValue::Value(_)) if key.kind == ConfigType::Password => "[hidden]".to_string(),
        Some(DefaultValue::Value(v)) if v.is_empty() => "`\"\"`".to_string(),
        // In a code span only `|` needs escaping; a backtick in the value takes a longer fence.
        Some(DefaultValue::Value(v)) if v.contains('`') => format!("`` {} ``", v.replace('|', "\\|")),
        Some(DefaultValue::Value(v)) => format!("`{}`", v.replace('|', "\\|")),
    }
}

/// Kafka's lower-case type names (`ConfigDef.Type` in its docs).
fn type_name(kind: ConfigType) -> &'static str {
    match kind {
        ConfigType::Boolean => "boolean",
        ConfigType::String => "string",
        ConfigType::Int => "int",
        ConfigType::Short => "short",
        ConfigType::Long => "long",
        ConfigType::Double => "double",
        ConfigType::List => "list",
        ConfigType::Class => "class",
        ConfigType::Password => "password",
    }
}

fn importance_name(importance: Importance) -> &'static str {
    match importance {
        Importance::High => "high",
        Importance::Medium => "medium",
        Importance::Low => "low",
    }
}

fn importance_rank(importance: Importance) -> u8 {
    match importance {
        Importance::High => 0,
        Importance::Medium => 1,
        Importance::Low => 2,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigDef, ConfigKey, ConfigType, ConfigValue, Importance, Validator};

    #[test]
    fn validators_describe_their_valid_values_as_kafka_does() {
        assert_eq!(Validator::at_least(1.0).valid_values().as_deref(), Some("[1,...]"));
        assert_eq!(Validator::between(0.0, 2.5).valid_values().as_deref(), Some("[0,...,2.5]"));
        assert_eq!(Validator::OneOf(vec!["insert", "upsert"]).valid_values().as_deref(), Some("[insert, upsert]"));
        assert_eq!(Validator::NonEmptyString.valid_values().as_deref(), Some("non-empty string"));
        let plain = Validator::custom(|_: &ConfigValue| Ok(()));
        assert_eq!(plain.valid_values(), None);
        assert_eq!(plain.described("an MQTT topic filter").valid_values().as_deref(), Some("an MQTT topic filter"));
        // A description does not replace a built-in validator's own.
        assert_eq!(Validator::NonEmptyList.described("x").valid_values().as_deref(), Some("non-empty list"));
    }

    #[test]
    fn markdown_table_orders_rows_like_kafka_and_escapes_cells() {
        let def = ConfigDef::new()
            .define(ConfigKey::new("b.low", ConfigType::Int, Some("5"), Importance::Low, "Low.").validator(Validator::at_least(0.0)))
            .define(ConfigKey::new("a.high", ConfigType::String, Some(""), Importance::High, "A | B <x>\n  next line"))
            .define(ConfigKey::required("z.required", ConfigType::List, Importance::Medium, "Needed."))
            .define(ConfigKey::new("secret", ConfigType::Password, Some("s3cret"), Importance::High, "Hush."))
            .define(ConfigKey::new("opt", ConfigType::String, None, Importance::High, "Optional."));
        let table = def.to_markdown();
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows[0], "| key | type | default | importance | documentation | valid values |");
        assert_eq!(rows[2], "| `z.required` | list | *required* | medium | Needed. |  |");
        assert_eq!(rows[3], "| `a.high` | string | `\"\"` | high | A \\| B &lt;x&gt; next line |  |");
        assert_eq!(rows[4], "| `opt` | string | null | high | Optional. |  |");
        assert_eq!(rows[5], "| `secret` | password | [hidden] | high | Hush. |  |");
        assert_eq!(rows[6], "| `b.low` | int | `5` | low | Low. | [0,...] |");
        assert_eq!(rows.len(), 7);
    }
}
