//! One request and what its answer means for the records in it.

use crate::config::HttpSinkConfig;
use crate::request::Prepared;
use connect_core::ErrorKind;
use connect_kit::backoff::{json_body_delay, server_delay, BodyDelay};
use connect_kit::http::{quote_body, Auth, HttpClient};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use std::time::{Duration, SystemTime};

/// Response bodies are quoted in errors (and DLQ headers) up to this many bytes.
const BODY_QUOTE_LIMIT: usize = 4096;

/// What became of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered,
    /// Try again later: a status in `retry.on.status.codes`, a transport error or a timeout. `server_delay`
    /// is what the server asked for (`Retry-After`, Telegram's `retry_after`), `status` what it answered.
    Retry { message: String, status: Option<u16>, server_delay: Option<Duration> },
    /// The target refused these records (a status not in `retry.on.status.codes`): the message carries the
    /// status and the response body.
    Refused { message: String },
    /// The target refused us rather than the records (401, 403, 407 not retried, or credentials that cannot
    /// be fetched): no record can get through, so records are not dead-lettered for it.
    Unauthorized { message: String },
}

/// Sends requests with the kit's client and classifies the answers.
pub struct Service {
    client: HttpClient,
    body_delay: Option<BodyDelay>,
}

impl Service {
    pub fn new(config: &HttpSinkConfig) -> connect_core::Result<Self> {
        Ok(Service {
            client: HttpClient::new(config.http.clone())?,
            body_delay: config.retry_after_pointer.as_deref().map(json_body_delay),
        })
    }

    pub async fn send(&self, config: &HttpSinkConfig, request: &Prepared) -> Outcome {
        let what = format!("{} {}", request.method, request.url);
        let builder = match self.client.request(request.method.clone(), &request.url).await {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::Retriable => {
                return Outcome::Retry { message: format!("{what}: {e}"), status: None, server_delay: None }
            }
            Err(e) => return Outcome::Unauthorized { message: format!("{what}: {e}") },
        };
        let mut builder = builder.headers(config.headers.clone());
        if let Some(body) = &request.body {
            if !config.headers.contains_key(CONTENT_TYPE) {
                let json = config.body_template.is_some() || config.body_format == crate::config::BodyFormat::Json;
                builder = builder.header(CONTENT_TYPE, if json { "application/json" } else { "text/plain; charset=utf-8" });
            }
            builder = builder.body(body.clone());
        }
        let response = match builder.send().await {
            Ok(r) => r,
            // A URL made from a record's key that is not a URL is the record's fault.
            Err(e) if e.is_builder() => return Outcome::Refused { message: format!("{what}: cannot build the request: {e}") },
            Err(e) => {
                let cause = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
                return Outcome::Retry { message: format!("{what}: {e}{cause}"), status: None, server_delay: None };
            }
        };
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let response_location = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        // Read to the end either way, so the connection goes back to the pool.
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) if status.is_success() => {
                tracing::debug!(error = %e, "{what}: answered {status} but the body could not be read");
                return Outcome::Delivered;
            }
            Err(e) => {
                return Outcome::Retry { message: format!("{what}: reading the {status} answer: {e}"), status: None, server_delay: None }
            }
        };
        if status.is_success() {
            return Outcome::Delivered;
        }
        let mut message = format!("{what} answered {status}: {}", quote_body(&body, BODY_QUOTE_LIMIT));
        if status.is_redirection() {
            // Not followed: a POST redirected becomes a GET without its body.
            let location = response_location.as_deref().unwrap_or("no Location header");
            message.push_str(&format!(" (a redirect to {location}; redirects are not followed: use the final URL)"));
        }
        let code = status.as_u16();
        if code == 401 && matches!(self.client.settings().auth, Auth::OAuth2(_)) {
            // The token may have been revoked or expired early: fetch a new one and try again.
            self.client.invalidate_token().await;
            return Outcome::Retry { message, status: Some(code), server_delay: None };
        }
        if config.retry_codes.contains(code) {
            let asks = matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE);
            let server_delay =
                if asks { server_delay(retry_after.as_deref(), &body, self.body_delay.as_ref(), SystemTime::now()) } else { None };
            return Outcome::Retry { message, status: Some(code), server_delay };
        }
        match code {
            401 | 403 | 407 => Outcome::Unauthorized { message },
            _ => Outcome::Refused { message },
        }
    }
}
