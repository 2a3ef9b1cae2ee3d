//! The connector: validates the config and hands every task the same one (the topics' partitions are shared
//! among tasks by the consumer group).

use crate::config::{self, S3SinkConfig};
use crate::task::S3SinkTask;
use connect_core::{async_trait, Config, ConfigDef, Connector, ConnectorContext, Result, SinkConnector, SinkTask};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Default)]
pub struct S3SinkConnector {
    config: Config,
}

#[async_trait]
impl Connector for S3SinkConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        config::def()
    }
    /// What the per-key checks cannot see (a partitioner without its keys, an unknown format), reported against
    /// the key it names.
    fn validate(&self, config: &Config) -> BTreeMap<String, Vec<String>> {
        connect_kit::validate::cross_key_errors(&config::def(), config, config::FORMAT_CLASS, |c| S3SinkConfig::parse(c).map(|_| ()))
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        S3SinkConfig::parse(&config)?;
        self.config = config;
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![self.config.clone(); max_tasks.max(1)])
    }
}

impl SinkConnector for S3SinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::<S3SinkTask>::default()
    }
}
