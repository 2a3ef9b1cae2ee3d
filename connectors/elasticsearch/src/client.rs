//! Requests to the cluster: `connection.url` hosts taken round robin (so a retried request goes to another
//! host), basic authentication, TLS from PEM files, all on the kit's HTTP client.

use crate::config::ElasticsearchSinkConfig;
use connect_kit::http::{quote_body, Auth, HttpClient, HttpSettings};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Response bodies are quoted in errors up to this many bytes.
const QUOTE_LIMIT: usize = 2048;

/// A request that did not get a usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// Unreachable, timed out, 429 or 5xx: try again later.
    #[error("{0}")]
    Retriable(String),
    /// Refused credentials, a request the cluster will never take: the task fails.
    #[error("{0}")]
    Fatal(String),
}

pub struct Client {
    http: HttpClient,
    urls: Vec<String>,
    next: AtomicUsize,
}

impl Client {
    pub fn new(config: &ElasticsearchSinkConfig) -> connect_core::Result<Self> {
        let settings = HttpSettings {
            auth: match &config.credentials {
                Some((user, password)) => Auth::Basic { user: user.clone(), password: password.clone() },
                None => Auth::None,
            },
            connect_timeout: config.connection_timeout,
            request_timeout: config.read_timeout,
            trust_pem: config.trust_pem.clone(),
            identity_pem: config.identity_pem.clone(),
            ..HttpSettings::new(config.urls[0].clone())
        };
        Ok(Client { http: HttpClient::new(settings)?, urls: config.urls.clone(), next: AtomicUsize::new(0) })
    }

    /// Sends `body` to `path` on the next host (round robin, so a retry goes to another one). Returns the status and body of a 2xx or 4xx answer other than 429.
    pub async fn send(&self, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), RequestError> {
        // Round robin: each request to the next host; a failed one is retried (later) on the host after it.
        let host = &self.urls[self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len()];
        let url = format!("{host}{path}");
        let request = self.http.request(method.clone(), &url).await.map_err(|e| RequestError::Fatal(e.to_string()))?;
        let response = match request.header(CONTENT_TYPE, content_type).body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                let cause = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
                return Err(RequestError::Retriable(format!("{method} {url}: {e}{cause}")));
            }
        };
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| RequestError::Retriable(format!("{method} {url}: reading the answer: {e}")))?;
        match status {
            429 => Err(RequestError::Retriable(format!("{method} {url} answered 429: {}", quote_body(&bytes, QUOTE_LIMIT)))),
            500..=599 => Err(RequestError::Retriable(format!("{method} {url} answered {status}: {}", quote_body(&bytes, QUOTE_LIMIT)))),
            401 | 403 | 413 => Err(RequestError::Fatal(format!("{method} {url} answered {status}: {}", quote_body(&bytes, QUOTE_LIMIT)))),
            _ => Ok((status, bytes.to_vec())),
        }
    }

    /// A `_bulk` request; its answer's body.
    pub async fn bulk(&self, body: Vec<u8>) -> Result<Vec<u8>, RequestError> {
        match self.send(Method::POST, "/_bulk", "application/x-ndjson", body).await? {
            (200, answer) => Ok(answer),
            (status, answer) => Err(RequestError::Fatal(format!("POST /_bulk answered {status}: {}", quote_body(&answer, QUOTE_LIMIT)))),
        }
    }

    /// Creates `index` with `mappings` unless it exists (400 `resource_already_exists_exception` is fine).
    pub async fn ensure_index(&self, index: &str, mappings: &serde_json::Value) -> Result<(), RequestError> {
        let path = format!("/{index}");
        if let (200, _) = self.send(Method::HEAD, &path, "application/json", Vec::new()).await? {
            return Ok(());
        }
        let body = serde_json::json!({ "mappings": mappings }).to_string().into_bytes();
        match self.send(Method::PUT, &path, "application/json", body).await? {
            (200..=299, _) => Ok(()),
            (400, answer) if String::from_utf8_lossy(&answer).contains("resource_already_exists_exception") => Ok(()),
            (status, answer) => {
                Err(RequestError::Fatal(format!("creating index {index} answered {status}: {}", quote_body(&answer, QUOTE_LIMIT))))
            }
        }
    }
}
