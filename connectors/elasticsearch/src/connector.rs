//! The connector: validates the config and hands every task the same one (the topics' partitions are
//! shared among tasks by the consumer group).

use crate::config::{self, ElasticsearchSinkConfig};
use crate::task::ElasticsearchSinkTask;
use connect_core::{async_trait, Config, ConfigDef, Connector, ConnectorContext, Result, SinkConnector, SinkTask};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Default)]
pub struct ElasticsearchSinkConnector {
    config: Config,
}

#[async_trait]
impl Connector for ElasticsearchSinkConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        config::def()
    }
    /// What the per-key checks cannot see (URLs that are not http(s), a data stream without a dataset),
    /// reported against the key it names.
    fn validate(&self, config: &Config) -> BTreeMap<String, Vec<String>> {
        connect_kit::validate::cross_key_errors(&config::def(), config, config::CONNECTION_URL, |c| {
            ElasticsearchSinkConfig::parse(c).map(|_| ())
        })
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        ElasticsearchSinkConfig::parse(&config)?;
        self.config = config;
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![self.config.clone(); max_tasks.max(1)])
    }
}

impl SinkConnector for ElasticsearchSinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::<ElasticsearchSinkTask>::default()
    }
}
