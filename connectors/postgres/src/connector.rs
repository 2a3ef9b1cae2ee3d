//! The connector: validates the config and hands every task the same one (the topics' partitions are
//! shared among tasks by the consumer group).

use crate::config::{self, PostgresSinkConfig};
use crate::task::PostgresSinkTask;
use connect_core::{async_trait, Config, ConfigDef, Connector, ConnectorContext, Result, SinkConnector, SinkTask};
use std::sync::Arc;

#[derive(Default)]
pub struct PostgresSinkConnector {
    config: Config,
}

#[async_trait]
impl Connector for PostgresSinkConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        config::def()
    }
    fn validate(&self, config: &Config) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut errors = std::collections::BTreeMap::new();
        if config::def().parse(config).is_ok() {
            if let Err(e) = PostgresSinkConfig::parse(config) {
                errors.insert("pk.mode".to_string(), vec![e.to_string()]);
            }
        }
        errors
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        PostgresSinkConfig::parse(&config)?;
        self.config = config;
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![self.config.clone(); max_tasks.max(1)])
    }
}

impl SinkConnector for PostgresSinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::<PostgresSinkTask>::default()
    }
}
