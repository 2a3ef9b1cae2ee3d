//! The connector: validates the config and hands every task the same one (the topics' partitions are shared
//! among tasks by the consumer group). One type serves both classes; the class decides the flavour.

use crate::config::{self, Flavour, Neo4jSinkConfig};
use crate::task::Neo4jSinkTask;
use connect_core::{async_trait, Config, ConfigDef, Connector, ConnectorContext, Result, SinkConnector, SinkTask};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Neo4jSinkConnector {
    flavour: Flavour,
    config: Config,
}

impl Neo4jSinkConnector {
    pub fn new(flavour: Flavour) -> Self {
        Neo4jSinkConnector { flavour, config: Config::new() }
    }
}

#[async_trait]
impl Connector for Neo4jSinkConnector {
    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
    fn config_def(&self) -> ConfigDef {
        config::def(self.flavour)
    }
    /// What the per-key checks cannot see (no template for a topic, a strategy we do not have, a bad URI),
    /// reported against the key it names.
    fn validate(&self, config: &Config) -> BTreeMap<String, Vec<String>> {
        let uri = if self.flavour == Flavour::Legacy { config::SERVER_URI } else { config::URI };
        connect_kit::validate::cross_key_errors(&config::def(self.flavour), config, uri, |c| {
            Neo4jSinkConfig::parse(c, self.flavour).map(|_| ())
        })
    }
    async fn start(&mut self, _context: Arc<dyn ConnectorContext>, config: Config) -> Result<()> {
        Neo4jSinkConfig::parse(&config, self.flavour)?;
        self.config = config;
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> Result<Vec<Config>> {
        Ok(vec![self.config.clone(); max_tasks.max(1)])
    }
}

impl SinkConnector for Neo4jSinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(Neo4jSinkTask::new(self.flavour))
    }
}
