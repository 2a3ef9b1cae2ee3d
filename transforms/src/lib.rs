//! connect-transforms: single-message transforms (SMTs) and predicates, under Kafka's class names.
//!
//! Depends on connect-core only; must not depend on a Kafka client, the worker or any connector.
//! Every built-in SMT and predicate of Kafka Connect is here, plus the wrangling transforms of [`wrangle`]
//! (ParseCsv, ParseJson, Explode, ComputeField, BuildStruct, ParseTimestamp) under `io.connectrs.transforms.*`,
//! and the WASM host of [`wasm`] (`io.connectrs.transforms.Wasm`), which runs users' own transforms in wasmtime.

mod cast;
mod extract_field;
mod fields;
mod filter;
mod more;
mod predicates;
mod regex_router;
mod timestamp_converter;
pub mod wasm;
pub mod wrangle;

pub use cast::Cast;
pub use extract_field::{ExtractField, Side};
pub use fields::{DropHeaders, HoistField, InsertField, InsertHeader, MaskField, ReplaceField, ValueToKey};
pub use filter::{ConfluentFilter, Filter};
pub use more::{format_timestamp, Flatten, HeaderFrom, SetSchemaMetadata, TimestampRouter};
pub use predicates::{HasHeaderKey, RecordIsTombstone, TopicNameMatches};
pub use regex_router::RegexRouter;
pub use timestamp_converter::{parse_timestamp, TimestampConverter};
pub use wasm::Wasm;
pub use wrangle::{BuildStruct, ComputeField, Explode, ParseCsv, ParseJson, ParseTimestamp};

use connect_core::plugin::{PredicatePlugin, TransformationPlugin};

pub fn transformation_plugins() -> Vec<TransformationPlugin> {
    vec![
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.TimestampConverter$Key",
            aliases: &["TimestampConverter$Key"],
            create: || Box::new(TimestampConverter::new(Side::Key)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.TimestampConverter$Value",
            aliases: &["TimestampConverter$Value"],
            create: || Box::new(TimestampConverter::new(Side::Value)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.Cast$Key",
            aliases: &["Cast$Key"],
            create: || Box::new(Cast::new(Side::Key)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.Cast$Value",
            aliases: &["Cast$Value"],
            create: || Box::new(Cast::new(Side::Value)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.Flatten$Key",
            aliases: &["Flatten$Key"],
            create: || Box::new(Flatten::new(Side::Key)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.Flatten$Value",
            aliases: &["Flatten$Value"],
            create: || Box::new(Flatten::new(Side::Value)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.SetSchemaMetadata$Key",
            aliases: &["SetSchemaMetadata$Key"],
            create: || Box::new(SetSchemaMetadata::new(Side::Key)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.SetSchemaMetadata$Value",
            aliases: &["SetSchemaMetadata$Value"],
            create: || Box::new(SetSchemaMetadata::new(Side::Value)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.HeaderFrom$Key",
            aliases: &["HeaderFrom$Key"],
            create: || Box::new(HeaderFrom::new(Side::Key)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.HeaderFrom$Value",
            aliases: &["HeaderFrom$Value"],
            create: || Box::new(HeaderFrom::new(Side::Value)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.TimestampRouter",
            aliases: &["TimestampRouter"],
            create: || Box::<TimestampRouter>::default(),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.ReplaceField$Key",
            aliases: &["ReplaceField$Key"],
            create: || Box::new(ReplaceField::new(Side::Key)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.ReplaceField$Value",
            aliases: &["ReplaceField$Value"],
            create: || Box::new(ReplaceField::new(Side::Value)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.InsertField$Key",
            aliases: &["InsertField$Key"],
            create: || Box::new(InsertField::new(Side::Key)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.InsertField$Value",
            aliases: &["InsertField$Value"],
            create: || Box::new(InsertField::new(Side::Value)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.MaskField$Key",
            aliases: &["MaskField$Key"],
            create: || Box::new(MaskField::new(Side::Key)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.MaskField$Value",
            aliases: &["MaskField$Value"],
            create: || Box::new(MaskField::new(Side::Value)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.HoistField$Key",
            aliases: &["HoistField$Key"],
            create: || Box::new(HoistField::new(Side::Key)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.HoistField$Value",
            aliases: &["HoistField$Value"],
            create: || Box::new(HoistField::new(Side::Value)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.ValueToKey",
            aliases: &["ValueToKey"],
            create: || Box::<ValueToKey>::default(),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.DropHeaders",
            aliases: &["DropHeaders"],
            create: || Box::<DropHeaders>::default(),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.InsertHeader",
            aliases: &["InsertHeader"],
            create: || Box::<InsertHeader>::default(),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.ExtractField$Key",
            aliases: &["ExtractField$Key"],
            create: || Box::new(ExtractField::new(Side::Key)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.ExtractField$Value",
            aliases: &["ExtractField$Value"],
            create: || Box::new(ExtractField::new(Side::Value)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.Filter",
            aliases: &["Filter"],
            create: || Box::<Filter>::default(),
        },
        TransformationPlugin {
            class: "io.confluent.connect.transforms.Filter$Key",
            aliases: &[],
            create: || Box::new(ConfluentFilter::new(Side::Key)),
        },
        TransformationPlugin {
            class: "io.confluent.connect.transforms.Filter$Value",
            aliases: &[],
            create: || Box::new(ConfluentFilter::new(Side::Value)),
        },
        TransformationPlugin {
            class: "org.apache.kafka.connect.transforms.RegexRouter",
            aliases: &["RegexRouter"],
            create: || Box::<RegexRouter>::default(),
        },
        // Wrangling beyond Kafka Connect (value side).
        TransformationPlugin {
            class: "io.connectrs.transforms.ParseCsv$Value",
            aliases: &["ParseCsv$Value", "ParseCsv"],
            create: || Box::<ParseCsv>::default(),
        },
        TransformationPlugin {
            class: "io.connectrs.transforms.ParseJson$Value",
            aliases: &["ParseJson$Value", "ParseJson"],
            create: || Box::<ParseJson>::default(),
        },
        TransformationPlugin {
            class: "io.connectrs.transforms.Explode$Value",
            aliases: &["Explode$Value", "Explode"],
            create: || Box::<Explode>::default(),
        },
        TransformationPlugin {
            class: "io.connectrs.transforms.ComputeField$Value",
            aliases: &["ComputeField$Value", "ComputeField"],
            create: || Box::<ComputeField>::default(),
        },
        TransformationPlugin {
            class: "io.connectrs.transforms.BuildStruct$Value",
            aliases: &["BuildStruct$Value", "BuildStruct"],
            create: || Box::<BuildStruct>::default(),
        },
        TransformationPlugin {
            class: "io.connectrs.transforms.ParseTimestamp$Value",
            aliases: &["ParseTimestamp$Value", "ParseTimestamp"],
            create: || Box::<ParseTimestamp>::default(),
        },
        TransformationPlugin { class: "io.connectrs.transforms.Wasm", aliases: &["Wasm"], create: || Box::<Wasm>::default() },
    ]
}

pub fn predicate_plugins() -> Vec<PredicatePlugin> {
    vec![
        PredicatePlugin {
            class: "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
            aliases: &["TopicNameMatches"],
            create: || Box::<TopicNameMatches>::default(),
        },
        PredicatePlugin {
            class: "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
            aliases: &["HasHeaderKey"],
            create: || Box::<HasHeaderKey>::default(),
        },
        PredicatePlugin {
            class: "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
            aliases: &["RecordIsTombstone"],
            create: || Box::<RecordIsTombstone>::default(),
        },
    ]
}
