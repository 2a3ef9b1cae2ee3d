//! OAUTHBEARER for the group connection (`wire.rs`): a token from the identity provider's token endpoint by
//! OAuth client credentials (RFC 6749 §4.4), from the same translated keys with which librdkafka's
//! `sasl.oauthbearer.method=oidc` gets one for the worker's other clients, and the client's initial response
//! that carries it (RFC 7628). A token is reused until 80% of its lifetime has passed, as librdkafka and
//! Kafka's login refresh do; the group connection logs in again only when it reconnects.

use crate::kafka::security::Translated;
use std::time::{Duration, Instant};

/// Where and how the group connection gets its tokens. The client secret is never printed.
pub struct TokenSource {
    url: String,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    /// `sasl.oauthbearer.extensions` (`name=value` pairs), sent with the token.
    extensions: Vec<(String, String)>,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource").field("url", &self.url).field("client_id", &self.client_id).finish()
    }
}

/// The part of the token endpoint's answer that matters here.
#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<Seconds>,
}

/// `expires_in`: a number, or a string of one (Azure AD v1 and ADFS send strings).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

impl Seconds {
    fn duration(&self) -> Option<Duration> {
        let seconds = match self {
            Seconds::Number(n) => *n,
            Seconds::Text(text) => text.trim().parse().ok()?,
        };
        Some(Duration::from_secs(seconds.min(MAX_LIFETIME.as_secs())))
    }
}

/// A token without `expires_in` is used for at most this long before another is asked for.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Longer lifetimes are taken as this (a day), so a wrong `expires_in` cannot pin one token for ever.
const MAX_LIFETIME: Duration = Duration::from_secs(86_400);
/// How long one token request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl TokenSource {
    /// From the translated top-level keys. Only client credentials: the JWT-bearer grant and unsecured tokens
    /// (development) are librdkafka's alone, and are refused here with the reason.
    pub fn from_translated(translated: &Translated) -> Result<Self, String> {
        let method = translated.get("sasl.oauthbearer.method").unwrap_or("default");
        if !method.trim().eq_ignore_ascii_case("oidc") {
            return Err("sasl.mechanism=OAUTHBEARER: distributed mode's group connection gets tokens from an identity provider \
                 (client credentials) only; unsecured development tokens are not supported there"
                .into());
        }
        if translated.get("sasl.oauthbearer.grant.type").is_some_and(|g| g.trim() != "client_credentials") {
            return Err(
                "sasl.oauthbearer.jwt.retriever.class: distributed mode's group connection gets tokens by client credentials only, \
                 not by the JWT-bearer grant"
                    .into(),
            );
        }
        let need = |key: &str, what: &str| translated.get(key).map(str::to_string).ok_or_else(|| format!("OAUTHBEARER: {what}"));
        let url = need("sasl.oauthbearer.token.endpoint.url", "no sasl.oauthbearer.token.endpoint.url for the group connection")?;
        let client_id = need("sasl.oauthbearer.client.id", "no client id (clientId in sasl.jaas.config) for the group connection")?;
        let client_secret =
            need("sasl.oauthbearer.client.secret", "no client secret (clientSecret in sasl.jaas.config) for the group connection")?;
        let extensions = translated
            .get("sasl.oauthbearer.extensions")
            .map(|list| {
                list.split(',')
                    .filter(|pair| !pair.trim().is_empty())
                    .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
                    .collect()
            })
            .unwrap_or_default();
        // The system's CAs beside the built-in ones, so an identity provider with a private CA works as it does
        // for librdkafka (which uses OpenSSL's default paths).
        let mut http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        for cert in rustls_native_certs::load_native_certs().certs {
            if let Ok(cert) = reqwest::Certificate::from_der(&cert) {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().map_err(|e| format!("OAUTHBEARER: an HTTP client: {e}"))?;
        Ok(TokenSource {
            url,
            client_id,
            client_secret,
            scope: translated.get("sasl.oauthbearer.scope").map(str::to_string),
            extensions,
            http,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// A token that has at least a fifth of its lifetime left: the cached one, or a new one from the endpoint.
    /// Errors say what the endpoint answered, never the secret or a token.
    pub async fn token(&self) -> Result<String, String> {
        let mut cached = self.cached.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref() {
            if Instant::now() < *refresh_at {
                return Ok(token.clone());
            }
        }
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope.as_str()));
        }
        let fetched_at = Instant::now();
        let response = self
            .http
            .post(&self.url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("OAUTHBEARER: the token endpoint {} did not answer: {e}", self.url))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| format!("OAUTHBEARER: the token endpoint's answer: {e}"))?;
        if !status.is_success() {
            let shown: String = body.chars().take(300).collect();
            return Err(format!("OAUTHBEARER: the token endpoint {} refused the client credentials: HTTP {status}: {shown}", self.url));
        }
        let answer: TokenResponse = serde_json::from_str(&body)
            .map_err(|e| format!("OAUTHBEARER: the token endpoint's answer is not a token response ({{\"access_token\": ...}}): {e}"))?;
        let lifetime = answer.expires_in.and_then(|s| s.duration()).unwrap_or(DEFAULT_LIFETIME);
        *cached = Some((answer.access_token.clone(), fetched_at + lifetime.mul_f64(0.8)));
        Ok(answer.access_token)
    }

    /// Drop the cached token, so the next login asks for a new one.
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    /// The client's first (and only) message: GS2 header, the token, the extensions.
    pub fn initial_response(&self, token: &str) -> Vec<u8> {
        initial_response(token, &self.extensions)
    }
}

fn initial_response(token: &str, extensions: &[(String, String)]) -> Vec<u8> {
    let mut message = format!("n,,\x01auth=Bearer {token}\x01");
    for (name, value) in extensions {
        message.push_str(&format!("{name}={value}\x01"));
    }
    message.push('\x01');
    message.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_response_carries_the_token_and_extensions_as_rfc_7628_says() {
        assert_eq!(initial_response("t.k.n", &[]), b"n,,\x01auth=Bearer t.k.n\x01\x01".to_vec());
        let extensions = vec![("logicalCluster".to_string(), "lkc-1".to_string())];
        assert_eq!(initial_response("t", &extensions), b"n,,\x01auth=Bearer t\x01logicalCluster=lkc-1\x01\x01".to_vec());
    }

    fn translated(keys: &[(&str, &str)]) -> Translated {
        Translated { set: keys.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ignored: Vec::new() }
    }

    #[test]
    fn expires_in_is_read_as_a_number_or_a_string_and_capped() {
        let read = |json: &str| serde_json::from_str::<TokenResponse>(json).unwrap().expires_in.and_then(|s| s.duration());
        assert_eq!(read(r#"{"access_token":"t","expires_in":300}"#), Some(Duration::from_secs(300)));
        assert_eq!(read(r#"{"access_token":"t","expires_in":"300"}"#), Some(Duration::from_secs(300)));
        assert_eq!(read(r#"{"access_token":"t","expires_in":18446744073709551615}"#), Some(MAX_LIFETIME));
        assert_eq!(read(r#"{"access_token":"t"}"#), None);
    }

    #[test]
    fn only_client_credentials_are_taken() {
        let full = [
            ("sasl.oauthbearer.method", "oidc"),
            ("sasl.oauthbearer.token.endpoint.url", "https://idp.example/token"),
            ("sasl.oauthbearer.client.id", "id"),
            ("sasl.oauthbearer.client.secret", "secret"),
            ("sasl.oauthbearer.extensions", "a=1,b=2"),
        ];
        let source = TokenSource::from_translated(&translated(&full)).unwrap();
        assert_eq!(source.extensions, vec![("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())]);
        assert!(!format!("{source:?}").contains("secret"));
        let unsecured = TokenSource::from_translated(&translated(&[("enable.sasl.oauthbearer.unsecure.jwt", "true")])).unwrap_err();
        assert!(unsecured.contains("unsecured"), "{unsecured}");
        let mut jwt_bearer = full.to_vec();
        jwt_bearer.push(("sasl.oauthbearer.grant.type", "urn:ietf:params:oauth:grant-type:jwt-bearer"));
        assert!(TokenSource::from_translated(&translated(&jwt_bearer)).unwrap_err().contains("JWT-bearer"));
        let no_secret = &full[..3];
        assert!(TokenSource::from_translated(&translated(no_secret)).unwrap_err().contains("client secret"));
    }
}
