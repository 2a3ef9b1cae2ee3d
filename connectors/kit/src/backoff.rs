//! One backoff policy for the worker and every connector.
//!
//! [`BackoffPolicy`] says how long to wait before retry number `attempt` (1-based): `initial ×
//! multiplier^(attempt-1)`, capped at `max`, then jittered. [`Backoff`] walks a policy and keeps its
//! give-up budget: at most `max_attempts` retries and/or `max_elapsed` since the first failure.
//!
//! The worker's two schedules are both expressible:
//!
//! - retries inside a task (`errors::next_delay`): 300 ms doubling, exact below the cap, uniform in
//!   `[cap/2, cap]` once capped: `BackoffPolicy::exponential(300 ms, cap).with_jitter(Jitter::WhenCapped(0.5))`;
//! - restarts (`RestartPolicy::delay`): `initial × 2^(n-1)`, capped, ±20%:
//!   `BackoffPolicy::exponential(initial, max).with_jitter(Jitter::Symmetric(0.2))`, with `max_attempts`
//!   for `auto.restart.max.attempts`.
//!
//! A server can ask for a delay: [`parse_retry_after`] reads an HTTP `Retry-After` header (seconds or an
//! HTTP date), a [`BodyDelay`] reads one from a response body (e.g. [`json_body_delay`] for Telegram's
//! `parameters.retry_after`), and [`Backoff::next_delay_at_least`] honours it within the budget.

use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// How a delay is randomised, so that many clients failing together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Exactly the nominal delay.
    None,
    /// The nominal delay times a factor uniform in `[1 - f, 1 + f]` (f clamped to `[0, 1]`).
    Symmetric(f64),
    /// Below the cap, exactly the nominal delay; once capped, the cap times a factor uniform in `[1 - f, 1]`.
    WhenCapped(f64),
}

/// A backoff schedule and its give-up budget. See the [module docs](self).
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffPolicy {
    /// The delay before the first retry.
    pub initial: Duration,
    /// No nominal delay exceeds this (jitter may go up to `(1 + f) × max` with [`Jitter::Symmetric`]).
    pub max: Duration,
    /// Growth per attempt: 2.0 doubles, 1.0 is a constant delay.
    pub multiplier: f64,
    pub jitter: Jitter,
    /// Give up after this many retries (`None`: no limit).
    pub max_attempts: Option<u32>,
    /// Give up once this long has passed since the first failure (`None`: no limit).
    pub max_elapsed: Option<Duration>,
}

impl BackoffPolicy {
    /// `initial`, doubling up to `max`, no jitter, no budget.
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        BackoffPolicy { initial, max, multiplier: 2.0, jitter: Jitter::None, max_attempts: None, max_elapsed: None }
    }
    /// The same delay every time (what the JDBC sink's `retry.backoff.ms` means), no budget.
    pub fn constant(delay: Duration) -> Self {
        BackoffPolicy { multiplier: 1.0, ..Self::exponential(delay, delay) }
    }
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }
    pub fn with_max_elapsed(mut self, elapsed: Duration) -> Self {
        self.max_elapsed = Some(elapsed);
        self
    }

    /// The delay before retry number `attempt` (1-based; 0 is treated as 1), jittered. Ignores the budget.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, fastrand::f64())
    }

    /// [`delay`](Self::delay) with the random draw given (`unit` in `[0, 1)`), for tests and callers that
    /// bring their own randomness.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let cap = self.max.as_secs_f64();
        // Beyond 2^63 every multiplier above 1 has reached any sane cap: stop growing the exponent there.
        let exponent = attempt.saturating_sub(1).min(63) as i32;
        let nominal = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = nominal >= cap;
        let base = nominal.min(cap);
        let factor = match self.jitter {
            Jitter::None => 1.0,
            Jitter::Symmetric(f) => {
                let f = f.clamp(0.0, 1.0);
                1.0 - f + 2.0 * f * unit
            }
            Jitter::WhenCapped(f) if capped => 1.0 - f.clamp(0.0, 1.0) * unit,
            Jitter::WhenCapped(_) => 1.0,
        };
        Duration::from_secs_f64((base * factor).max(0.0))
    }
}

/// Walks a [`BackoffPolicy`], counting attempts and time against its budget.
///
/// The elapsed-time budget starts at the first failure after [`new`](Self::new) or [`reset`](Self::reset),
/// so a connection that was up for an hour has its whole budget when it drops.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
    first_failure: Option<Instant>,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff { policy, attempt: 0, first_failure: None }
    }
    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }
    /// Retries handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
    /// Time since the first failure of this run (zero when none).
    pub fn elapsed(&self) -> Duration {
        self.first_failure.map(|t| t.elapsed()).unwrap_or_default()
    }

    /// Something failed: how long to wait before the next attempt, or `None` when the budget is spent.
    /// The last delay is shortened so that the final attempt happens within `max_elapsed`.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.next_delay_at_least(None)
    }

    /// As [`next_delay`](Self::next_delay), but wait at least `server_delay` (a `Retry-After` or a body's
    /// delay): the server knows when it will take requests again, and our own schedule may be longer.
    pub fn next_delay_at_least(&mut self, server_delay: Option<Duration>) -> Option<Duration> {
        let first_failure = *self.first_failure.get_or_insert_with(Instant::now);
        if self.policy.max_attempts.is_some_and(|max| self.attempt >= max) {
            return None;
        }
        let mut delay = self.policy.delay(self.attempt + 1);
        if let Some(server) = server_delay {
            delay = delay.max(server);
        }
        if let Some(budget) = self.policy.max_elapsed {
            let left = budget.checked_sub(first_failure.elapsed()).filter(|left| !left.is_zero())?;
            delay = delay.min(left);
        }
        self.attempt += 1;
        Some(delay)
    }

    /// It worked: the next failure starts the schedule and the budget over.
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.first_failure = None;
    }
}

/// Reads a delay the server put in a response body (e.g. Telegram's `{"parameters": {"retry_after": 5}}`).
pub type BodyDelay = Arc<dyn Fn(&[u8]) -> Option<Duration> + Send + Sync>;

/// A [`BodyDelay`] reading whole or fractional seconds at a JSON pointer, e.g. `/parameters/retry_after`.
pub fn json_body_delay(pointer: &str) -> BodyDelay {
    let pointer = pointer.to_string();
    Arc::new(move |body: &[u8]| {
        let json: serde_json::Value = serde_json::from_slice(body).ok()?;
        let seconds = json.pointer(&pointer)?.as_f64()?;
        (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
    })
}

/// An HTTP `Retry-After` value (RFC 9110 §10.2.3): delta-seconds, or an HTTP date taken relative to `now`
/// (a date in the past means "now": zero). `None` for anything else, which callers treat as no advice.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// The server's requested delay, from a `Retry-After` header if there is one, else from the body.
pub fn server_delay(retry_after: Option<&str>, body: &[u8], body_delay: Option<&BodyDelay>, now: SystemTime) -> Option<Duration> {
    retry_after.and_then(|v| parse_retry_after(v, now)).or_else(|| body_delay.and_then(|read| read(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn exponential_doubles_to_the_cap_without_jitter() {
        let p = BackoffPolicy::exponential(100 * MS, 1000 * MS);
        let delays: Vec<u128> = (1..=6).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay(0), 100 * MS, "attempt 0 counts as the first");
        assert_eq!(p.delay(u32::MAX), 1000 * MS, "no overflow at huge attempts");
        assert_eq!(BackoffPolicy::constant(250 * MS).delay(9), 250 * MS);
    }

    #[test]
    fn symmetric_jitter_stays_within_its_fraction() {
        // The restart policy: initial × 2^(n-1), capped, ±20%.
        let p = BackoffPolicy::exponential(Duration::from_secs(1), Duration::from_secs(10)).with_jitter(Jitter::Symmetric(0.2));
        for (attempt, nominal) in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (40, 10.0)] {
            assert_eq!(p.delay_with(attempt, 0.0).as_secs_f64(), nominal * 0.8);
            assert!((p.delay_with(attempt, 0.999_999).as_secs_f64() - nominal * 1.2).abs() < 1e-4);
            for _ in 0..200 {
                let d = p.delay(attempt).as_secs_f64();
                assert!(d >= nominal * 0.8 - 1e-9 && d <= nominal * 1.2 + 1e-9, "attempt {attempt}: {d}");
            }
        }
        let spread: std::collections::HashSet<Duration> = (0..50).map(|_| p.delay(3)).collect();
        assert!(spread.len() > 1, "jitter must actually vary");
    }

    #[test]
    fn capped_jitter_matches_the_worker_retry_schedule() {
        // errors::next_delay: 300 ms doubling, exact below the cap, in [cap/2, cap] once capped.
        let cap = 1000 * MS;
        let p = BackoffPolicy::exponential(300 * MS, cap).with_jitter(Jitter::WhenCapped(0.5));
        assert_eq!(p.delay(1), 300 * MS);
        assert_eq!(p.delay(2), 600 * MS);
        for _ in 0..200 {
            let d = p.delay(3);
            assert!(d >= cap / 2 && d <= cap, "{d:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn attempt_budget_runs_out_and_reset_restores_it() {
        let mut b = Backoff::new(BackoffPolicy::constant(10 * MS).with_max_attempts(3));
        assert_eq!([b.next_delay(), b.next_delay(), b.next_delay()], [Some(10 * MS); 3]);
        assert_eq!(b.next_delay(), None);
        assert_eq!(b.attempts(), 3);
        b.reset();
        assert_eq!(b.next_delay(), Some(10 * MS));
    }

    #[tokio::test(start_paused = true)]
    async fn elapsed_budget_counts_from_the_first_failure() {
        let mut b = Backoff::new(BackoffPolicy::exponential(100 * MS, Duration::from_secs(10)).with_max_elapsed(Duration::from_secs(1)));
        // Time before the first failure does not count.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut waited = Duration::ZERO;
        while let Some(d) = b.next_delay() {
            tokio::time::sleep(d).await;
            waited += d;
        }
        assert_eq!(waited, Duration::from_secs(1), "100+200+400, then the 300 ms left, then give up");
        assert_eq!(b.attempts(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn server_delay_wins_when_longer() {
        let mut b = Backoff::new(BackoffPolicy::constant(100 * MS));
        assert_eq!(b.next_delay_at_least(Some(Duration::from_secs(5))), Some(Duration::from_secs(5)));
        assert_eq!(b.next_delay_at_least(Some(MS)), Some(100 * MS));
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO), "a past date means now");
        for garbage in ["", "soon", "-5", "1.5", "12 s", "Sun, 99 Nov 1994 08:50:07 GMT"] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
    }

    #[test]
    fn body_delay_from_json() {
        let read = json_body_delay("/parameters/retry_after");
        let body = br#"{"ok":false,"error_code":429,"parameters":{"retry_after":7}}"#;
        assert_eq!(read(body), Some(Duration::from_secs(7)));
        assert_eq!(read(b"not json"), None);
        assert_eq!(read(br#"{"parameters":{"retry_after":"x"}}"#), None);
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(server_delay(Some("3"), body, Some(&read), now), Some(Duration::from_secs(3)), "the header first");
        assert_eq!(server_delay(Some("junk"), body, Some(&read), now), Some(Duration::from_secs(7)));
        assert_eq!(server_delay(None, b"{}", Some(&read), now), None);
    }
}
