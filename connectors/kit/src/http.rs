//! The HTTP client setup shared by HTTP-based connectors: reqwest with rustls, connect and request
//! timeouts, a proxy, gzip responses, and authentication (basic, a bearer token, or an OAuth2
//! client-credentials token fetched once and reused until shortly before it expires).
//!
//! Keys are Confluent's HTTP sink's ([`config_def`] defines them for a connector to merge into its own):
//! `http.api.url`, `auth.type` (NONE, BASIC, BEARER, OAUTH2), `connection.user` / `connection.password`,
//! `bearer.token`, `oauth2.token.url`, `oauth2.client.id`, `oauth2.client.secret`, `oauth2.client.scope`,
//! `oauth2.token.property`, `oauth2.client.auth.mode` (header or url), `http.proxy.host` / `.port` /
//! `.user` / `.password`, `http.connect.timeout.ms`, `http.request.timeout.ms`, and for TLS
//! `https.ssl.truststore.location` (a PEM bundle of extra roots) and `https.ssl.keystore.location` (a PEM
//! file with the client certificate and key): PEM instead of Java key stores.
//!
//! [`classify_status`] tells a retriable HTTP status from a data error, for [`crate::isolate`](mod@crate::isolate) and retries.

use connect_core::config::ConfigValue;
use connect_core::{ConfigDef, ConfigKey, ConfigType, ConnectError, ErrorKind, Importance, ParsedConfig, Validator};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, StatusCode};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub const API_URL: &str = "http.api.url";
pub const AUTH_TYPE: &str = "auth.type";
pub const USER: &str = "connection.user";
pub const PASSWORD: &str = "connection.password";
pub const BEARER_TOKEN: &str = "bearer.token";
pub const OAUTH2_TOKEN_URL: &str = "oauth2.token.url";
pub const OAUTH2_CLIENT_ID: &str = "oauth2.client.id";
pub const OAUTH2_CLIENT_SECRET: &str = "oauth2.client.secret";
pub const OAUTH2_SCOPE: &str = "oauth2.client.scope";
pub const OAUTH2_TOKEN_PROPERTY: &str = "oauth2.token.property";
pub const OAUTH2_CLIENT_AUTH_MODE: &str = "oauth2.client.auth.mode";
pub const PROXY_HOST: &str = "http.proxy.host";
pub const PROXY_PORT: &str = "http.proxy.port";
pub const PROXY_USER: &str = "http.proxy.user";
pub const PROXY_PASSWORD: &str = "http.proxy.password";
pub const CONNECT_TIMEOUT: &str = "http.connect.timeout.ms";
pub const REQUEST_TIMEOUT: &str = "http.request.timeout.ms";
pub const SSL_TRUSTSTORE: &str = "https.ssl.truststore.location";
pub const SSL_KEYSTORE: &str = "https.ssl.keystore.location";

/// A token is renewed this long before the server said it expires, so a request never carries a stale one.
const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// What can go wrong setting up or authenticating the client.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{key}: {message}")]
    Config { key: &'static str, message: String },
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
    #[error("cannot fetch an OAuth2 token from {url}")]
    TokenRequest { url: String, source: reqwest::Error },
    #[error("the OAuth2 token endpoint {url} answered {status}: {body}")]
    TokenRefused { url: String, status: StatusCode, body: String },
    #[error("the OAuth2 token response has no string property {property}")]
    TokenMissing { property: String },
}

impl HttpError {
    /// Config mistakes and refused credentials are fatal; an unreachable token endpoint or its 5xx/429 is
    /// retriable.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HttpError::TokenRequest { .. } => ErrorKind::Retriable,
            HttpError::TokenRefused { status, .. } if classify_status(*status) == ErrorKind::Retriable => ErrorKind::Retriable,
            _ => ErrorKind::Fatal,
        }
    }
}

impl From<HttpError> for ConnectError {
    fn from(e: HttpError) -> Self {
        ConnectError::new(e.kind(), "HTTP client").with_source(e)
    }
}

/// What a response status means for the records in the request: 408, 429 and 5xx are the target's
/// condition (retry later); other 4xx are the data's fault; anything below 400 is not an error (`Fatal` is
/// never returned for those; callers check success first).
pub fn classify_status(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        408 | 425 | 429 => ErrorKind::Retriable,
        s if s >= 500 => ErrorKind::Retriable,
        s if s >= 400 => ErrorKind::Data,
        _ => ErrorKind::Fatal,
    }
}

/// A response body for an error message (and a DLQ header): as text, cut at `limit` bytes with the full size said.
pub fn quote_body(body: &[u8], limit: usize) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(limit)]);
    if body.len() > limit {
        format!("{text}... ({} bytes)", body.len())
    } else {
        text.into_owned()
    }
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    Bearer(String),
    OAuth2(OAuth2),
}

/// OAuth2 client credentials (RFC 6749 §4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct OAuth2 {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    /// The response property holding the token (`access_token`).
    pub token_property: String,
    /// Client id and secret in a basic `Authorization` header (`true`, "header") or in the form ("url").
    pub credentials_in_header: bool,
}

/// Everything [`HttpClient::new`] needs, read from a connector's config by [`HttpSettings::from_config`].
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    pub api_url: String,
    pub auth: Auth,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// `http://host:port` of the proxy, with its credentials.
    pub proxy: Option<(String, Option<(String, String)>)>,
    pub trust_pem: Option<String>,
    pub identity_pem: Option<String>,
    /// The longest wait for the next bytes of a response, for long downloads that a whole-request
    /// `request_timeout` would cut (set that to zero for none).
    pub read_timeout: Option<Duration>,
    /// Follow up to 10 redirects (GET feeds); off for sinks, where a redirect would turn a POST into a GET.
    pub follow_redirects: bool,
}

impl HttpSettings {
    /// Settings for `api_url` with no auth, proxy or extra TLS, and the HTTP sink's 30 s timeouts.
    pub fn new(api_url: impl Into<String>) -> Self {
        HttpSettings {
            api_url: api_url.into(),
            auth: Auth::None,
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            proxy: None,
            trust_pem: None,
            identity_pem: None,
            read_timeout: None,
            follow_redirects: false,
        }
    }

    /// From a config parsed with a definition that includes [`config_def`].
    pub fn from_config(parsed: &ParsedConfig) -> Result<Self, HttpError> {
        let text = |key: &str| parsed.optional_string(key).filter(|v| !v.is_empty());
        let needed = |key: &'static str| text(key).ok_or(HttpError::Config { key, message: "is required by this auth.type".into() });
        let auth = match parsed.string(AUTH_TYPE).to_ascii_uppercase().as_str() {
            "NONE" => Auth::None,
            "BASIC" => Auth::Basic { user: needed(USER)?, password: text(PASSWORD).unwrap_or_default() },
            "BEARER" => Auth::Bearer(needed(BEARER_TOKEN)?),
            "OAUTH2" => Auth::OAuth2(OAuth2 {
                token_url: needed(OAUTH2_TOKEN_URL)?,
                client_id: needed(OAUTH2_CLIENT_ID)?,
                client_secret: needed(OAUTH2_CLIENT_SECRET)?,
                scope: text(OAUTH2_SCOPE),
                token_property: parsed.string(OAUTH2_TOKEN_PROPERTY),
                credentials_in_header: !parsed.string(OAUTH2_CLIENT_AUTH_MODE).eq_ignore_ascii_case("url"),
            }),
            other => return Err(HttpError::Config { key: AUTH_TYPE, message: format!("unknown auth type {other}") }),
        };
        let proxy = match text(PROXY_HOST) {
            None => None,
            Some(host) => {
                let port = parsed.int(PROXY_PORT);
                let url = if host.contains("://") { format!("{host}:{port}") } else { format!("http://{host}:{port}") };
                Some((url, text(PROXY_USER).map(|u| (u, text(PROXY_PASSWORD).unwrap_or_default()))))
            }
        };
        Ok(HttpSettings {
            api_url: parsed.string(API_URL),
            auth,
            connect_timeout: Duration::from_millis(parsed.int(CONNECT_TIMEOUT) as u64),
            request_timeout: Duration::from_millis(parsed.int(REQUEST_TIMEOUT) as u64),
            proxy,
            trust_pem: text(SSL_TRUSTSTORE),
            identity_pem: text(SSL_KEYSTORE),
            read_timeout: None,
            follow_redirects: false,
        })
    }
}

/// The keys [`HttpSettings::from_config`] reads, for a connector's own definition to merge.
pub fn config_def() -> ConfigDef {
    let key = |name: &str, kind, default: Option<&str>, doc: &str| ConfigKey::new(name, kind, default, Importance::Medium, doc);
    ConfigDef::new()
        .define(ConfigKey::required(API_URL, ConfigType::String, Importance::High, "The URL requests go to."))
        .define(
            key(AUTH_TYPE, ConfigType::String, Some("NONE"), "NONE, BASIC, BEARER or OAUTH2 (client credentials).").validator(
                Validator::custom(|v| match v {
                    ConfigValue::String(s) if ["NONE", "BASIC", "BEARER", "OAUTH2"].contains(&s.to_ascii_uppercase().as_str()) => Ok(()),
                    ConfigValue::String(s) => Err(format!("unknown auth type {s}: use NONE, BASIC, BEARER or OAUTH2")),
                    _ => Ok(()),
                })
                .described("[NONE, BASIC, BEARER, OAUTH2] (any case)"),
            ),
        )
        .define(key(USER, ConfigType::String, None, "User for BASIC auth."))
        .define(key(PASSWORD, ConfigType::Password, None, "Password for BASIC auth."))
        .define(key(BEARER_TOKEN, ConfigType::Password, None, "Token for BEARER auth."))
        .define(key(OAUTH2_TOKEN_URL, ConfigType::String, None, "OAuth2 token endpoint."))
        .define(key(OAUTH2_CLIENT_ID, ConfigType::String, None, "OAuth2 client id."))
        .define(key(OAUTH2_CLIENT_SECRET, ConfigType::Password, None, "OAuth2 client secret."))
        .define(key(OAUTH2_SCOPE, ConfigType::String, None, "OAuth2 scope to ask for."))
        .define(key(OAUTH2_TOKEN_PROPERTY, ConfigType::String, Some("access_token"), "Token response property that holds the token."))
        .define(
            key(
                OAUTH2_CLIENT_AUTH_MODE,
                ConfigType::String,
                Some("header"),
                "header: client id and secret as basic auth; url: in the form.",
            )
            .validator(Validator::OneOf(vec!["header", "url"])),
        )
        .define(key(PROXY_HOST, ConfigType::String, None, "HTTP proxy host."))
        .define(key(PROXY_PORT, ConfigType::Int, Some("0"), "HTTP proxy port.").validator(Validator::between(0.0, 65535.0)))
        .define(key(PROXY_USER, ConfigType::String, None, "HTTP proxy user."))
        .define(key(PROXY_PASSWORD, ConfigType::Password, None, "HTTP proxy password."))
        .define(key(CONNECT_TIMEOUT, ConfigType::Int, Some("30000"), "Connect timeout.").validator(Validator::at_least(1.0)))
        .define(key(REQUEST_TIMEOUT, ConfigType::Int, Some("30000"), "Timeout of a whole request.").validator(Validator::at_least(1.0)))
        .define(key(SSL_TRUSTSTORE, ConfigType::String, None, "PEM file of CA certificates to trust besides the system's."))
        .define(key(SSL_KEYSTORE, ConfigType::String, None, "PEM file with the client certificate and its private key."))
}

#[derive(Debug)]
struct CachedToken {
    header: HeaderValue,
    /// `None`: the server gave no lifetime; used until [`HttpClient::invalidate_token`].
    renew_at: Option<Instant>,
}

/// A reqwest client with the settings applied; [`request`](Self::request) adds authentication.
#[derive(Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    settings: HttpSettings,
    token: Mutex<Option<CachedToken>>,
}

impl HttpClient {
    pub fn new(settings: HttpSettings) -> Result<Self, HttpError> {
        let read = |key: &'static str, path: &str| {
            std::fs::read(path).map_err(|e| HttpError::Config { key, message: format!("cannot read {path}: {e}") })
        };
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(settings.connect_timeout)
            // A redirect would turn a POST into a GET without its body, whose 2xx would look like a delivery:
            // a 3xx is handed to the connector as it is (the HTTP sink refuses the records, naming Location).
            .redirect(if settings.follow_redirects { reqwest::redirect::Policy::limited(10) } else { reqwest::redirect::Policy::none() })
            .gzip(true)
            .deflate(true);
        if !settings.request_timeout.is_zero() {
            builder = builder.timeout(settings.request_timeout);
        }
        if let Some(read_timeout) = settings.read_timeout {
            builder = builder.read_timeout(read_timeout);
        }
        if let Some((url, credentials)) = &settings.proxy {
            let mut proxy = reqwest::Proxy::all(url).map_err(|e| HttpError::Config { key: PROXY_HOST, message: e.to_string() })?;
            if let Some((user, password)) = credentials {
                proxy = proxy.basic_auth(user, password);
            }
            builder = builder.proxy(proxy);
        } else {
            // Only the configured proxy: an environment's HTTP_PROXY must not silently reroute a connector.
            builder = builder.no_proxy();
        }
        if let Some(path) = &settings.trust_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(&read(SSL_TRUSTSTORE, path)?)
                .map_err(|e| HttpError::Config { key: SSL_TRUSTSTORE, message: e.to_string() })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some(path) = &settings.identity_pem {
            let identity = reqwest::Identity::from_pem(&read(SSL_KEYSTORE, path)?)
                .map_err(|e| HttpError::Config { key: SSL_KEYSTORE, message: e.to_string() })?;
            builder = builder.identity(identity);
        }
        Ok(HttpClient { client: builder.build().map_err(HttpError::Build)?, settings, token: Mutex::new(None) })
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }
    /// The underlying client, for requests that need no authentication.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// A request to `url` (e.g. `settings().api_url`) with authentication applied; an OAuth2 token is
    /// fetched first if there is none or it is about to expire.
    pub async fn request(&self, method: Method, url: &str) -> Result<RequestBuilder, HttpError> {
        let request = self.client.request(method, url);
        Ok(match &self.settings.auth {
            Auth::None => request,
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::OAuth2(oauth) => request.header(AUTHORIZATION, self.oauth2_header(oauth).await?),
        })
    }

    /// The target said 401: drop the cached token so the next request fetches a new one.
    pub async fn invalidate_token(&self) {
        *self.token.lock().await = None;
    }

    async fn oauth2_header(&self, oauth: &OAuth2) -> Result<HeaderValue, HttpError> {
        // Held across the fetch: concurrent requests wait for one fetch instead of each making their own.
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.renew_at.is_none_or(|at| Instant::now() < at)) {
            return Ok(token.header.clone());
        }
        let token = self.fetch_token(oauth).await?;
        let header = token.header.clone();
        *cached = Some(token);
        Ok(header)
    }

    async fn fetch_token(&self, oauth: &OAuth2) -> Result<CachedToken, HttpError> {
        let url = &oauth.token_url;
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &oauth.scope {
            form.push(("scope", scope));
        }
        let mut request = self.client.post(url);
        if oauth.credentials_in_header {
            request = request.basic_auth(&oauth.client_id, Some(&oauth.client_secret));
        } else {
            form.push(("client_id", &oauth.client_id));
            form.push(("client_secret", &oauth.client_secret));
        }
        let asked = Instant::now();
        let transport = |source| HttpError::TokenRequest { url: url.clone(), source };
        let response = request.form(&form).send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(HttpError::TokenRefused { url: url.clone(), status, body: String::from_utf8_lossy(&body).into_owned() });
        }
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let missing = || HttpError::TokenMissing { property: oauth.token_property.clone() };
        let token = json.get(&oauth.token_property).and_then(|t| t.as_str()).ok_or_else(missing)?;
        let header = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| missing())?;
        let lifetime = json.get("expires_in").and_then(|e| e.as_u64().or_else(|| e.as_str()?.parse().ok())).map(Duration::from_secs);
        let renew_at = lifetime.map(|l| asked + l.saturating_sub(TOKEN_EXPIRY_MARGIN.min(l / 2)));
        tracing::debug!(url, lifetime_s = lifetime.map(|l| l.as_secs()), "fetched an OAuth2 token");
        Ok(CachedToken { header, renew_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::routing::{get, post};
    use axum::Router;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[derive(Default)]
    struct Seen {
        token_fetches: AtomicUsize,
        authorization: std::sync::Mutex<Vec<String>>,
    }

    /// "hello gzip" compressed with gzip(1).
    const GZIPPED: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0x48, 0xaf, 0xca, 0x2c, 0x00, 0x00,
        0x19, 0x6a, 0xd2, 0xdf, 0x0a, 0x00, 0x00, 0x00,
    ];

    async fn serve(seen: Arc<Seen>, token_lifetime: u64) -> String {
        let app = Router::new()
            .route(
                "/token",
                post(move |State(seen): State<Arc<Seen>>, headers: HeaderMap, body: String| async move {
                    let n = seen.token_fetches.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(body.contains("grant_type=client_credentials"), "{body}");
                    let basic = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                    assert_eq!(basic, "Basic aWQ6c2VjcmV0", "client id:secret as basic auth");
                    format!(r#"{{"access_token":"token-{n}","token_type":"Bearer","expires_in":{token_lifetime}}}"#)
                }),
            )
            .route(
                "/api",
                get(|State(seen): State<Arc<Seen>>, headers: HeaderMap| async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
                    seen.authorization.lock().unwrap().push(auth);
                    "ok"
                }),
            )
            .route(
                "/gzip",
                get(|headers: HeaderMap| async move {
                    let accepts = headers.get("accept-encoding").and_then(|v| v.to_str().ok()).unwrap_or_default().contains("gzip");
                    assert!(accepts, "the client asks for gzip");
                    ([("content-encoding", "gzip")], GZIPPED)
                }),
            )
            .with_state(seen);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}")
    }

    fn oauth(base: &str) -> Auth {
        Auth::OAuth2(OAuth2 {
            token_url: format!("{base}/token"),
            client_id: "id".into(),
            client_secret: "secret".into(),
            scope: None,
            token_property: "access_token".into(),
            credentials_in_header: true,
        })
    }

    #[tokio::test]
    async fn oauth2_token_is_fetched_once_and_reused() {
        let seen = Arc::new(Seen::default());
        let base = serve(seen.clone(), 3600).await;
        let client = HttpClient::new(HttpSettings { auth: oauth(&base), ..HttpSettings::new(format!("{base}/api")) }).unwrap();
        for _ in 0..3 {
            let response = client.request(Method::GET, &client.settings().api_url).await.unwrap().send().await.unwrap();
            assert_eq!(response.text().await.unwrap(), "ok");
        }
        assert_eq!(seen.token_fetches.load(Ordering::SeqCst), 1);
        assert_eq!(*seen.authorization.lock().unwrap(), ["Bearer token-1"; 3]);
        client.invalidate_token().await;
        client.request(Method::GET, &client.settings().api_url).await.unwrap().send().await.unwrap();
        assert_eq!(seen.token_fetches.load(Ordering::SeqCst), 2, "a 401 invalidation fetches anew");
        assert_eq!(seen.authorization.lock().unwrap().last().unwrap(), "Bearer token-2");
    }

    #[tokio::test]
    async fn oauth2_token_is_renewed_before_it_expires() {
        let seen = Arc::new(Seen::default());
        // A 0 s lifetime: renewed at once, so every request fetches.
        let base = serve(seen.clone(), 0).await;
        let client = HttpClient::new(HttpSettings { auth: oauth(&base), ..HttpSettings::new(format!("{base}/api")) }).unwrap();
        for _ in 0..2 {
            client.request(Method::GET, &client.settings().api_url).await.unwrap().send().await.unwrap();
        }
        assert_eq!(seen.token_fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn basic_and_bearer_headers_are_sent() {
        let seen = Arc::new(Seen::default());
        let base = serve(seen.clone(), 60).await;
        let url = format!("{base}/api");
        for auth in [Auth::Basic { user: "user".into(), password: "pass".into() }, Auth::Bearer("abc".into()), Auth::None] {
            let client = HttpClient::new(HttpSettings { auth, ..HttpSettings::new(&url) }).unwrap();
            client.request(Method::GET, &url).await.unwrap().send().await.unwrap().error_for_status().unwrap();
        }
        assert_eq!(*seen.authorization.lock().unwrap(), ["Basic dXNlcjpwYXNz", "Bearer abc", "-"]);
    }

    #[tokio::test]
    async fn gzip_bodies_are_decoded() {
        let base = serve(Arc::default(), 60).await;
        let client = HttpClient::new(HttpSettings::new(&base)).unwrap();
        let body = client.request(Method::GET, &format!("{base}/gzip")).await.unwrap().send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "hello gzip");
    }

    #[tokio::test]
    async fn token_endpoint_errors_are_classified() {
        let client = HttpClient::new(HttpSettings {
            auth: oauth("http://127.0.0.1:9"), // discard port: nothing listens
            connect_timeout: Duration::from_secs(2),
            ..HttpSettings::new("http://127.0.0.1:9/api")
        })
        .unwrap();
        let err = client.request(Method::GET, "http://127.0.0.1:9/api").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Retriable, "{err}");
        assert!(ConnectError::from(err).is_retriable());
    }

    #[test]
    fn settings_from_confluent_keys() {
        let config = [
            (API_URL, "https://example.com/in"),
            (AUTH_TYPE, "oauth2"),
            (OAUTH2_TOKEN_URL, "https://example.com/token"),
            (OAUTH2_CLIENT_ID, "id"),
            (OAUTH2_CLIENT_SECRET, "s"),
            (OAUTH2_CLIENT_AUTH_MODE, "url"),
            (PROXY_HOST, "proxy.local"),
            (PROXY_PORT, "3128"),
            (REQUEST_TIMEOUT, "5000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let parsed = config_def().parse(&config).unwrap();
        let s = HttpSettings::from_config(&parsed).unwrap();
        assert_eq!(s.request_timeout, Duration::from_secs(5));
        assert_eq!(s.connect_timeout, Duration::from_secs(30));
        assert_eq!(s.proxy, Some(("http://proxy.local:3128".into(), None)));
        let Auth::OAuth2(o) = &s.auth else { panic!("{:?}", s.auth) };
        assert!(!o.credentials_in_header);
        assert_eq!(o.token_property, "access_token");
        let mut basic_without_user = config.clone();
        basic_without_user.insert(AUTH_TYPE.into(), "BASIC".into());
        let err = HttpSettings::from_config(&config_def().parse(&basic_without_user).unwrap()).unwrap_err();
        assert!(err.to_string().starts_with(USER), "{err}");
        assert!(config_def().parse(&[(API_URL.to_string(), "x".to_string()), (AUTH_TYPE.into(), "KERBEROS".into())].into()).is_err());
    }

    #[test]
    fn statuses() {
        assert_eq!(classify_status(StatusCode::TOO_MANY_REQUESTS), ErrorKind::Retriable);
        assert_eq!(classify_status(StatusCode::SERVICE_UNAVAILABLE), ErrorKind::Retriable);
        assert_eq!(classify_status(StatusCode::REQUEST_TIMEOUT), ErrorKind::Retriable);
        assert_eq!(classify_status(StatusCode::BAD_REQUEST), ErrorKind::Data);
        assert_eq!(classify_status(StatusCode::UNPROCESSABLE_ENTITY), ErrorKind::Data);
    }
}
