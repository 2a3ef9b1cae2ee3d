//! `org.apache.kafka.connect.transforms.Filter`: drops every record it is applied to; used with a predicate.

use connect_core::transform::{Transformation, Transformed};
use connect_core::{Config, ConfigDef, RecordData, Result};

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
