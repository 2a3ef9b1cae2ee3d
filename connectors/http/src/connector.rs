//! The connector: validates the config and hands every task the same one (the topics' partitions are
//! shared among tasks by the consumer group).

use crate::config::{self, HttpSinkConfig};
use crate::task::HttpSinkTask;
use connect_core::{async_trait, Config, ConfigDef, Connector, ConnectorContext, Result, SinkConnector, SinkTask};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Default)]
pub struct HttpSinkConnector {
    config: Config,
}

#[async_trait]
impl Connector for HttpSinkConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        config::def()
    }
    /// What the per-key checks cannot see: headers, regexes and templates that do not parse, a URL that is
    /// not one, auth keys missing for the chosen `auth.type`. Reported against the key they name.
    fn validate(&self, config: &Config) -> BTreeMap<String, Vec<String>> {
        connect_kit::validate::cross_key_errors(&config::def(), config, connect_kit::http::API_URL, |c| {
            HttpSinkConfig::parse(c).map(|_| ())
        })
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        HttpSinkConfig::parse(&config)?;
        self.config = config;
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![self.config.clone(); max_tasks.max(1)])
    }
}

impl SinkConnector for HttpSinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::<HttpSinkTask>::default()
    }
}
