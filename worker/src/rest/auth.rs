//! Optional REST authentication: HTTP basic users and bearer tokens, read from files named in the worker
//! config (secrets never sit inline in it). When either is set, every endpoint but `/health` needs them.
//!
//! Worker keys: `rest.auth.basic.users.file` (a properties file, `user=password` per line) and
//! `rest.auth.bearer.tokens.file` (one token per line; `#` comments and blank lines are ignored).

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub const BASIC_USERS_FILE: &str = "rest.auth.basic.users.file";
pub const BEARER_TOKENS_FILE: &str = "rest.auth.bearer.tokens.file";

#[derive(Debug, Default)]
pub struct RestAuth {
    users: HashMap<String, String>,
    tokens: Vec<String>,
}

impl RestAuth {
    /// From the worker config; `None` when no authentication is configured.
    pub fn from_worker(raw: &connect_core::Config) -> Result<Option<Arc<Self>>, String> {
        let mut auth = RestAuth::default();
        if let Some(path) = raw.get(BASIC_USERS_FILE).filter(|p| !p.trim().is_empty()) {
            let text =
                std::fs::read_to_string(Path::new(path.trim())).map_err(|e| format!("{BASIC_USERS_FILE}: cannot read {path}: {e}"))?;
            let users = java_properties::read(text.as_bytes()).map_err(|e| format!("{BASIC_USERS_FILE}: {path}: {e}"))?;
            auth.users = users.into_iter().map(|(u, p)| (u.trim().to_string(), p.trim().to_string())).collect();
        }
        if let Some(path) = raw.get(BEARER_TOKENS_FILE).filter(|p| !p.trim().is_empty()) {
            let text =
                std::fs::read_to_string(Path::new(path.trim())).map_err(|e| format!("{BEARER_TOKENS_FILE}: cannot read {path}: {e}"))?;
            auth.tokens = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect();
        }
        if auth.users.is_empty() && auth.tokens.is_empty() {
            return Ok(None);
        }
        Ok(Some(Arc::new(auth)))
    }

    /// Does this `Authorization` header value carry valid credentials?
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else { return false };
        if let Some(token) = value.strip_prefix("Bearer ") {
            return self.tokens.iter().any(|t| constant_time_eq(t.as_bytes(), token.trim().as_bytes()));
        }
        if let Some(encoded) = value.strip_prefix("Basic ") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
            let Ok(text) = String::from_utf8(decoded) else { return false };
            let Some((user, password)) = text.split_once(':') else { return false };
            return self.users.get(user).is_some_and(|p| constant_time_eq(p.as_bytes(), password.as_bytes()));
        }
        false
    }
}

/// Compare secrets without an early exit that would leak how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Axum middleware: 401 without valid credentials, except for `/health`.
pub async fn require_auth(State(auth): State<Arc<RestAuth>>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let header_value = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if auth.allows(header_value) {
        return next.run(request).await;
    }
    let body = axum::Json(serde_json::json!({"error_code": 401, "message": "Authentication required: HTTP basic or bearer credentials"}));
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"connect-rs\"")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.properties");
        std::fs::write(&users, "ops=s3cret\n").unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, "# cron\ntok-1\n\n").unwrap();
        let cfg: connect_core::Config =
            [(BASIC_USERS_FILE.to_string(), users.display().to_string()), (BEARER_TOKENS_FILE.to_string(), tokens.display().to_string())]
                .into_iter()
                .collect();
        let auth = RestAuth::from_worker(&cfg).unwrap().unwrap();
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("ops:s3cret"));
        assert!(auth.allows(Some(&basic)));
        assert!(auth.allows(Some("Bearer tok-1")));
        assert!(!auth.allows(Some("Bearer tok-2")));
        assert!(!auth.allows(Some(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("ops:wrong")))));
        assert!(!auth.allows(Some("Basic !!!")));
        assert!(!auth.allows(None));
        assert!(RestAuth::from_worker(&connect_core::Config::new()).unwrap().is_none());
    }
}
