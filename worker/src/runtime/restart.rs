//! Automatic restart of failed tasks and connectors: exponential backoff with jitter, an optional cap on
//! attempts, and a healthy-run window after which the attempt counter starts again.
//!
//! Keys (worker config sets the default, a connector config overrides it):
//! `auto.restart.enable` (true), `auto.restart.backoff.initial.ms` (1000), `auto.restart.backoff.max.ms`
//! (300000), `auto.restart.max.attempts` (-1 = no limit), `auto.restart.reset.after.ms` (300000).
//! The defaults follow Conduit's recovery (1 s doubling, counter reset after 5 healthy minutes) with a
//! 5-minute cap, so a flapping target is retried often at first and at most every five minutes after.

use connect_core::Config;
use connect_kit::backoff::{BackoffPolicy, Jitter};
use std::time::Duration;

pub const ENABLE: &str = "auto.restart.enable";
pub const INITIAL_MS: &str = "auto.restart.backoff.initial.ms";
pub const MAX_MS: &str = "auto.restart.backoff.max.ms";
pub const MAX_ATTEMPTS: &str = "auto.restart.max.attempts";
pub const RESET_AFTER_MS: &str = "auto.restart.reset.after.ms";

#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    pub enabled: bool,
    pub initial: Duration,
    pub max: Duration,
    /// `None`: no limit.
    pub max_attempts: Option<u32>,
    /// A run this long counts as healthy: the next failure starts the backoff from the beginning.
    pub reset_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            enabled: true,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            max_attempts: None,
            reset_after: Duration::from_secs(300),
        }
    }
}

impl RestartPolicy {
    /// The worker's policy, overridden key by key by the connector's.
    pub fn resolve(worker: &Config, connector: &Config) -> Self {
        let get = |key: &str| connector.get(key).or_else(|| worker.get(key)).map(|v| v.trim().to_string());
        let ms = |key: &str, default: Duration| get(key).and_then(|v| v.parse::<u64>().ok()).map(Duration::from_millis).unwrap_or(default);
        let d = RestartPolicy::default();
        RestartPolicy {
            enabled: get(ENABLE).map(|v| !v.eq_ignore_ascii_case("false")).unwrap_or(d.enabled),
            initial: ms(INITIAL_MS, d.initial).max(Duration::from_millis(1)),
            max: ms(MAX_MS, d.max),
            max_attempts: get(MAX_ATTEMPTS).and_then(|v| v.parse::<i64>().ok()).and_then(|v| u32::try_from(v).ok()),
            reset_after: ms(RESET_AFTER_MS, d.reset_after),
        }
    }

    /// The delay before restart number `attempt` (1-based): initial × 2^(attempt-1), capped, with ±20%
    /// jitter so many tasks failing together do not restart together.
    pub fn delay(&self, attempt: u32) -> Duration {
        BackoffPolicy::exponential(self.initial, self.max.max(self.initial)).with_jitter(Jitter::Symmetric(0.2)).delay(attempt)
    }

    /// May restart number `attempt` happen?
    pub fn allows(&self, attempt: u32) -> bool {
        self.enabled && self.max_attempts.is_none_or(|max| attempt <= max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn connector_overrides_worker() {
        let p = RestartPolicy::resolve(&cfg(&[(INITIAL_MS, "500"), (MAX_ATTEMPTS, "3")]), &cfg(&[(MAX_ATTEMPTS, "-1"), (MAX_MS, "2000")]));
        assert_eq!(p.initial, Duration::from_millis(500));
        assert_eq!(p.max, Duration::from_secs(2));
        assert_eq!(p.max_attempts, None);
        assert!(p.enabled);
        assert!(!RestartPolicy::resolve(&cfg(&[(ENABLE, "false")]), &Config::new()).enabled);
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let p = RestartPolicy { initial: Duration::from_secs(1), max: Duration::from_secs(10), ..Default::default() };
        for (attempt, nominal) in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (40, 10.0)] {
            let d = p.delay(attempt).as_secs_f64();
            assert!(d >= nominal * 0.8 - 1e-9 && d <= nominal * 1.2 + 1e-9, "attempt {attempt}: {d}");
        }
    }

    #[test]
    fn attempts_limit() {
        let p = RestartPolicy { max_attempts: Some(2), ..Default::default() };
        assert!(p.allows(1) && p.allows(2) && !p.allows(3));
        assert!(!RestartPolicy { enabled: false, ..Default::default() }.allows(1));
    }
}
