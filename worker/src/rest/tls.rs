//! REST listeners over plain HTTP and HTTPS (issue #13): `listeners=http://host:port,https://host:port`,
//! with the TLS settings read from Kafka Connect's `ssl.*` worker keys and served on rustls.
//!
//! Keys are read as Kafka Connect's `RestServer` reads them (`SSLUtils.createServerSideSslContextFactory`
//! with `valuesWithPrefixAllOrNothing`): when any `listeners.https.`-prefixed key is set, the prefixed
//! set is used and the plain `ssl.*` keys are ignored; otherwise the plain `ssl.*` keys apply.
//!
//! | key (after the prefix) | what |
//! |---|---|
//! | `ssl.keystore.type` | `PEM` or `PKCS12`; when unset, guessed from the file (a PEM file starts with `-----BEGIN`). `JKS` is refused |
//! | `ssl.keystore.location` | PEM: the private key and certificate chain in one file; PKCS12: the store |
//! | `ssl.keystore.password` | the PKCS12 store's password |
//! | `ssl.key.password` | the password of an encrypted PKCS#8 PEM key (`ENCRYPTED PRIVATE KEY`, PBES2) |
//! | `ssl.keystore.key`, `ssl.keystore.certificate.chain` | inline PEM key and chain instead of a file |
//! | `ssl.client.auth` | `none` (default), `requested` or `required` |
//! | `ssl.truststore.type`, `ssl.truststore.location`, `ssl.truststore.password` | CA certificates that sign client certificates: PEM or PKCS12 |
//! | `ssl.truststore.certificates` | inline PEM CA certificates instead of a file |
//! | `ssl.enabled.protocols` | `TLSv1.2`, `TLSv1.3` (older versions are not offered) |
//!
//! `ssl.cipher.suites`, `ssl.protocol` and the Java-only keys (`ssl.keymanager.algorithm`, ...) are ignored:
//! rustls offers its safe default suites. A bad setting is a [`ListenerConfigError`] at startup.
//!
//! HTTPS is served by axum-server's rustls acceptor: every connection's handshake runs on its own task
//! with a 10 s timeout, so a failed or stalled handshake neither stops the server nor holds up others.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use connect_core::Config;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// The prefix that scopes `ssl.*` keys to the REST server's https listeners.
pub const HTTPS_PREFIX: &str = "listeners.https.";

/// A REST listener, from one entry of `listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerUrl {
    pub https: bool,
    /// `host:port` to bind; Kafka's empty host (`http://:8083`) becomes 127.0.0.1.
    pub address: String,
}

impl ListenerUrl {
    pub fn parse(url: &str) -> Result<Self, ListenerConfigError> {
        let url = url.trim();
        let invalid = |reason: &str| ListenerConfigError::Listener { value: url.to_string(), reason: reason.to_string() };
        let (https, rest) = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
            Some(_) => return Err(invalid("only http and https are allowed")),
            None => return Err(invalid("expected protocol://host:port")),
        };
        let rest = rest.trim_end_matches('/');
        if !rest.contains(':') || rest.contains('/') {
            return Err(invalid("expected protocol://host:port"));
        }
        // Kafka Connect's "http://:8083" means every interface; we bind loopback unless told a host.
        let address = if rest.starts_with(':') { format!("127.0.0.1{rest}") } else { rest.to_string() };
        Ok(ListenerUrl { https, address })
    }

    pub fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// Ask for a certificate; a client without one is let in, one with an untrusted one is not.
    Requested,
    Required,
}

/// A REST listener or TLS setting that cannot work; the worker does not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenerConfigError {
    #[error("listeners: invalid listener '{value}': {reason}")]
    Listener { value: String, reason: String },
    #[error(
        "an https listener needs a keystore: set {prefix}ssl.keystore.location (PEM or PKCS12), or {prefix}ssl.keystore.key with {prefix}ssl.keystore.certificate.chain"
    )]
    NoKeystore { prefix: &'static str },
    #[error(
        "{key}={value} is not supported: use PEM or PKCS12 (convert a JKS store with `keytool -importkeystore -deststoretype PKCS12`)"
    )]
    UnsupportedStoreType { key: String, value: String },
    #[error("{key}={value}: expected none, requested or required")]
    InvalidClientAuth { key: String, value: String },
    #[error("{key}={value} needs the CA certificates to check clients against: set {prefix}ssl.truststore.location (PEM or PKCS12) or {prefix}ssl.truststore.certificates")]
    NoTruststore { key: String, value: String, prefix: &'static str },
    #[error("{key}: cannot read {path}: {source}")]
    Read { key: String, path: PathBuf, source: std::io::Error },
    #[error("{what}: invalid PEM: {message}")]
    Pem { what: String, message: String },
    #[error("{what}: no private key (expected a PEM block PRIVATE KEY, ENCRYPTED PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")]
    NoPrivateKey { what: String },
    #[error("{what}: no certificate")]
    NoCertificate { what: String },
    #[error("{what}: the private key is encrypted: set {password_key}")]
    KeyPasswordMissing { what: String, password_key: String },
    #[error("{what}: cannot decrypt the private key with {password_key}: {message}")]
    KeyDecrypt { what: String, password_key: String, message: String },
    #[error(
        "{what}: the private key is encrypted in the legacy OpenSSL format, which is not supported: convert it to PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
    )]
    LegacyEncryptedKey { what: String },
    #[error("{what}: a PKCS12 store needs its password: set {password_key}")]
    StorePasswordMissing { what: String, password_key: String },
    #[error("{what}: cannot open the PKCS12 store (wrong password?): {message}")]
    Pkcs12 { what: String, message: String },
    #[error("{what}: the PKCS12 store has no private key entry")]
    Pkcs12NoKey { what: String },
    #[error("{key}={value}: no supported protocol (rustls offers TLSv1.2 and TLSv1.3)")]
    NoProtocol { key: String, value: String },
    #[error("{what}: {source}")]
    Rustls { what: String, source: rustls::Error },
    #[error("truststore: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The https listeners' TLS settings: a rustls server config shared by all of them.
#[derive(Debug, Clone)]
pub struct HttpsConfig {
    pub server: Arc<ServerConfig>,
    pub client_auth: ClientAuth,
}

/// The `ssl.*` settings in force: the prefixed set if any prefixed key is set, otherwise the plain one.
struct SslSettings<'a> {
    raw: &'a Config,
    prefix: &'static str,
}

impl<'a> SslSettings<'a> {
    fn new(raw: &'a Config) -> Self {
        let prefixed = raw.keys().any(|k| k.starts_with(HTTPS_PREFIX));
        SslSettings { raw, prefix: if prefixed { HTTPS_PREFIX } else { "" } }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A non-blank value.
    fn get(&self, name: &str) -> Option<&'a str> {
        self.raw.get(&self.key(name)).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A value that may span lines (inline PEM): kept as given, but blank is unset.
    fn get_text(&self, name: &str) -> Option<&'a str> {
        self.raw.get(&self.key(name)).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    fn store_type(&self, name: &str) -> Result<Option<StoreType>, ListenerConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("PEM") => Ok(Some(StoreType::Pem)),
            Some(v) if v.eq_ignore_ascii_case("PKCS12") => Ok(Some(StoreType::Pkcs12)),
            Some(v) => Err(ListenerConfigError::UnsupportedStoreType { key: self.key(name), value: v.to_string() }),
        }
    }

    fn read(&self, name: &str, path: &str) -> Result<Vec<u8>, ListenerConfigError> {
        std::fs::read(path).map_err(|source| ListenerConfigError::Read { key: self.key(name), path: path.into(), source })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreType {
    Pem,
    Pkcs12,
}

/// PEM unless told otherwise, or unless the file does not look like PEM (then PKCS12, which is DER).
fn store_type_of(given: Option<StoreType>, bytes: &[u8]) -> StoreType {
    given.unwrap_or_else(|| if bytes.windows(10).any(|w| w == b"-----BEGIN") { StoreType::Pem } else { StoreType::Pkcs12 })
}

impl HttpsConfig {
    /// From the worker config; errors say which key to fix.
    pub fn from_worker(raw: &Config) -> Result<Self, ListenerConfigError> {
        let ssl = SslSettings::new(raw);
        if !ssl.prefix.is_empty() {
            tracing::info!("REST https: using the {HTTPS_PREFIX}ssl.* keys (the plain ssl.* keys are ignored, as in Kafka Connect)");
        }
        let (chain, key) = load_keystore(&ssl)?;
        let client_auth = match ssl.get("ssl.client.auth") {
            None => ClientAuth::None,
            Some(v) if v.eq_ignore_ascii_case("none") => ClientAuth::None,
            Some(v) if v.eq_ignore_ascii_case("requested") => ClientAuth::Requested,
            Some(v) if v.eq_ignore_ascii_case("required") => ClientAuth::Required,
            Some(v) => return Err(ListenerConfigError::InvalidClientAuth { key: ssl.key("ssl.client.auth"), value: v.to_string() }),
        };

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = protocol_versions(&ssl)?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|source| ListenerConfigError::Rustls { what: "TLS protocol versions".into(), source })?;
        let builder = match client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Requested | ClientAuth::Required => {
                let roots = load_truststore(&ssl)?.ok_or_else(|| ListenerConfigError::NoTruststore {
                    key: ssl.key("ssl.client.auth"),
                    value: ssl.get("ssl.client.auth").unwrap_or_default().to_string(),
                    prefix: ssl.prefix,
                })?;
                let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                if client_auth == ClientAuth::Requested {
                    verifier = verifier.allow_unauthenticated();
                }
                builder.with_client_cert_verifier(verifier.build()?)
            }
        };
        let mut server = builder.with_single_cert(chain, key).map_err(|source| ListenerConfigError::Rustls {
            what: format!("{} (does the private key belong to the first certificate?)", keystore_name(&ssl)),
            source,
        })?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        for ignored in ["ssl.cipher.suites", "ssl.protocol", "ssl.keymanager.algorithm", "ssl.trustmanager.algorithm", "ssl.provider"] {
            if ssl.get(ignored).is_some() {
                tracing::info!(key = %ssl.key(ignored), "ignored: rustls uses its safe defaults");
            }
        }
        Ok(HttpsConfig { server: Arc::new(server), client_auth })
    }
}

/// The TLS material of the worker's own Kafka clients, from the plain `ssl.*` keys as the Kafka clients read
/// them: the brokers' CA certificates (`None`: the system's) and the client's key and chain (`None`: no client
/// certificate). For the distributed group connection, which librdkafka does not make.
pub fn kafka_client_material(raw: &Config) -> Result<(Option<RootCertStore>, Option<KeyAndChain>), ListenerConfigError> {
    let ssl = SslSettings { raw, prefix: "" };
    let identity = match load_keystore(&ssl) {
        Ok(identity) => Some(identity),
        Err(ListenerConfigError::NoKeystore { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok((load_truststore(&ssl)?, identity))
}

fn keystore_name(ssl: &SslSettings) -> String {
    match ssl.get("ssl.keystore.location") {
        Some(path) => format!("{}={path}", ssl.key("ssl.keystore.location")),
        None => ssl.key("ssl.keystore.key"),
    }
}

fn protocol_versions(ssl: &SslSettings) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, ListenerConfigError> {
    let Some(value) = ssl.get("ssl.enabled.protocols") else {
        return Ok(rustls::DEFAULT_VERSIONS.to_vec());
    };
    let mut versions = Vec::new();
    for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match p {
            "TLSv1.3" => versions.push(&rustls::version::TLS13),
            "TLSv1.2" => versions.push(&rustls::version::TLS12),
            other => {
                tracing::warn!(key = %ssl.key("ssl.enabled.protocols"), protocol = other, "not offered: rustls supports TLSv1.2 and TLSv1.3")
            }
        }
    }
    if versions.is_empty() {
        return Err(ListenerConfigError::NoProtocol { key: ssl.key("ssl.enabled.protocols"), value: value.to_string() });
    }
    Ok(versions)
}

pub type KeyAndChain = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The server's certificate chain and private key, from a PEM or PKCS12 file or inline PEM.
fn load_keystore(ssl: &SslSettings) -> Result<KeyAndChain, ListenerConfigError> {
    let given = ssl.store_type("ssl.keystore.type")?;
    if let Some(path) = ssl.get("ssl.keystore.location") {
        let bytes = ssl.read("ssl.keystore.location", path)?;
        let what = format!("{}={path}", ssl.key("ssl.keystore.location"));
        return match store_type_of(given, &bytes) {
            StoreType::Pem => {
                let chain = certificates_from_pem(&bytes, &what)?;
                let key = private_key_from_pem(&bytes, ssl.get("ssl.key.password"), &what, &ssl.key("ssl.key.password"))?;
                Ok((chain, key))
            }
            StoreType::Pkcs12 => {
                let password_key = ssl.key("ssl.keystore.password");
                let password = ssl
                    .get("ssl.keystore.password")
                    .ok_or_else(|| ListenerConfigError::StorePasswordMissing { what: what.clone(), password_key })?;
                keystore_from_pkcs12(&bytes, password, &what)
            }
        };
    }
    match (ssl.get_text("ssl.keystore.key"), ssl.get_text("ssl.keystore.certificate.chain")) {
        (Some(key), Some(chain)) => {
            if given == Some(StoreType::Pkcs12) {
                return Err(ListenerConfigError::UnsupportedStoreType {
                    key: ssl.key("ssl.keystore.type"),
                    value: "PKCS12 with inline PEM keys".into(),
                });
            }
            let chain = certificates_from_pem(chain.as_bytes(), &ssl.key("ssl.keystore.certificate.chain"))?;
            let key = private_key_from_pem(
                key.as_bytes(),
                ssl.get("ssl.key.password"),
                &ssl.key("ssl.keystore.key"),
                &ssl.key("ssl.key.password"),
            )?;
            Ok((chain, key))
        }
        _ => Err(ListenerConfigError::NoKeystore { prefix: ssl.prefix }),
    }
}

/// The CA certificates client certificates must chain to; `None` when no truststore is configured.
fn load_truststore(ssl: &SslSettings) -> Result<Option<RootCertStore>, ListenerConfigError> {
    let given = ssl.store_type("ssl.truststore.type")?;
    let (certs, what) = if let Some(path) = ssl.get("ssl.truststore.location") {
        let bytes = ssl.read("ssl.truststore.location", path)?;
        let what = format!("{}={path}", ssl.key("ssl.truststore.location"));
        let certs = match store_type_of(given, &bytes) {
            StoreType::Pem => certificates_from_pem(&bytes, &what)?,
            StoreType::Pkcs12 => {
                let password_key = ssl.key("ssl.truststore.password");
                let password = ssl
                    .get("ssl.truststore.password")
                    .ok_or_else(|| ListenerConfigError::StorePasswordMissing { what: what.clone(), password_key })?;
                truststore_from_pkcs12(&bytes, password, &what)?
            }
        };
        (certs, what)
    } else if let Some(pem) = ssl.get_text("ssl.truststore.certificates") {
        let what = ssl.key("ssl.truststore.certificates");
        (certificates_from_pem(pem.as_bytes(), &what)?, what)
    } else {
        return Ok(None);
    };
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|source| ListenerConfigError::Rustls { what: what.clone(), source })?;
    }
    Ok(Some(roots))
}

fn certificates_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, ListenerConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ListenerConfigError::Pem { what: what.to_string(), message: e.to_string() })?;
    if certs.is_empty() {
        return Err(ListenerConfigError::NoCertificate { what: what.to_string() });
    }
    Ok(certs)
}

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// The private key of a PEM keystore: PKCS#8 (plain or encrypted with `password`), PKCS#1 or SEC1.
fn private_key_from_pem(
    pem: &[u8],
    password: Option<&str>,
    what: &str,
    password_key: &str,
) -> Result<PrivateKeyDer<'static>, ListenerConfigError> {
    let text = String::from_utf8_lossy(pem);
    if let Some(start) = text.find(ENCRYPTED_BEGIN) {
        let end = text[start..]
            .find(ENCRYPTED_END)
            .map(|e| start + e + ENCRYPTED_END.len())
            .ok_or_else(|| ListenerConfigError::Pem { what: what.to_string(), message: format!("no {ENCRYPTED_END}") })?;
        let password = password
            .ok_or_else(|| ListenerConfigError::KeyPasswordMissing { what: what.to_string(), password_key: password_key.to_string() })?;
        let (_, der) = pkcs8::der::pem::decode_vec(text[start..end].as_bytes())
            .map_err(|e| ListenerConfigError::Pem { what: what.to_string(), message: e.to_string() })?;
        let decrypt_error =
            |message: String| ListenerConfigError::KeyDecrypt { what: what.to_string(), password_key: password_key.to_string(), message };
        let encrypted = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice()).map_err(|e| decrypt_error(e.to_string()))?;
        let document = encrypted.decrypt(password).map_err(|e| decrypt_error(e.to_string()))?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(document.as_bytes().to_vec())));
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(ListenerConfigError::LegacyEncryptedKey { what: what.to_string() });
    }
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(key),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err(ListenerConfigError::NoPrivateKey { what: what.to_string() }),
        Err(e) => Err(ListenerConfigError::Pem { what: what.to_string(), message: e.to_string() }),
    }
}

fn open_pkcs12(bytes: &[u8], password: &str, what: &str) -> Result<p12_keystore::KeyStore, ListenerConfigError> {
    p12_keystore::KeyStore::from_pkcs12(bytes, password, p12_keystore::Pkcs12ImportPolicy::Relaxed)
        .map_err(|e| ListenerConfigError::Pkcs12 { what: what.to_string(), message: e.to_string() })
}

fn keystore_from_pkcs12(bytes: &[u8], password: &str, what: &str) -> Result<KeyAndChain, ListenerConfigError> {
    let store = open_pkcs12(bytes, password, what)?;
    let (alias, chain) = store.private_key_chain().ok_or_else(|| ListenerConfigError::Pkcs12NoKey { what: what.to_string() })?;
    if chain.certs().is_empty() {
        return Err(ListenerConfigError::NoCertificate { what: format!("{what} (entry {alias})") });
    }
    tracing::debug!(alias, subject = chain.certs()[0].subject(), "REST https: key from the PKCS12 keystore");
    let certs = chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
    Ok((certs, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()))))
}

/// The trust anchors of a PKCS12 truststore, read as the Kafka clients' are (`pkcs12_trust_anchors`: `KeyStore`
/// import would drop an openssl-made truststore's certificates, which lack Java's trusted attribute).
fn truststore_from_pkcs12(bytes: &[u8], password: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, ListenerConfigError> {
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(bytes, password)
        .map_err(|e| ListenerConfigError::Pkcs12 { what: what.to_string(), message: e.to_string() })?;
    let certs: Vec<CertificateDer<'static>> =
        crate::kafka::security::pkcs12_trust_anchors(&archive).into_iter().map(|der| CertificateDer::from(der.to_vec())).collect();
    if certs.is_empty() {
        return Err(ListenerConfigError::NoCertificate { what: what.to_string() });
    }
    Ok(certs)
}

/// Serve `router` on a bound listener until the task is aborted: plain HTTP, or HTTPS with `tls`.
pub async fn serve(listener: tokio::net::TcpListener, router: Router, tls: Option<Arc<ServerConfig>>) -> std::io::Result<()> {
    let Some(tls) = tls else {
        return axum::serve(listener, router).await;
    };
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(axum_server::tls_rustls::RustlsConfig::from_config(tls));
    axum_server::Server::<SocketAddr>::from_listener(listener)
        .acceptor(acceptor)
        // A handshake that fails (no or untrusted client certificate, plain HTTP on the https port) ends that
        // connection only; the handler runs on the connection's own task.
        .accept_error_handler(|peer, error| match peer {
            Some(peer) => tracing::info!(%peer, %error, "REST https: connection refused (TLS handshake failed)"),
            None => tracing::info!(%error, "REST https: connection not accepted"),
        })
        .serve(router.into_make_service())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway P-256 key and self-signed certificate (CN=localhost), made for these tests with
    // `openssl req -x509 -newkey ec` and encrypted with `openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:s3cret`.
    const CERT: &str = include_str!("testdata/cert.pem");
    const KEY: &str = include_str!("testdata/key.pem");
    const ENCRYPTED_KEY: &str = include_str!("testdata/key-encrypted.pem");

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    #[test]
    fn parses_listeners() {
        assert_eq!(ListenerUrl::parse("https://127.0.0.1:8443").unwrap(), ListenerUrl { https: true, address: "127.0.0.1:8443".into() });
        assert_eq!(ListenerUrl::parse("HTTP://:8083").unwrap(), ListenerUrl { https: false, address: "127.0.0.1:8083".into() });
        assert_eq!(ListenerUrl::parse("http://0.0.0.0:8083/").unwrap().address, "0.0.0.0:8083");
        for bad in ["ftp://x:1", "127.0.0.1:8083", "https://host", "http://h:1/path"] {
            assert!(matches!(ListenerUrl::parse(bad), Err(ListenerConfigError::Listener { .. })), "{bad}");
        }
    }

    #[test]
    fn pem_keystore_with_plain_and_encrypted_keys() {
        let dir = tempfile::tempdir().unwrap();
        let plain = write(dir.path(), "plain.pem", &format!("{KEY}{CERT}"));
        let encrypted = write(dir.path(), "enc.pem", &format!("{ENCRYPTED_KEY}{CERT}"));
        let ok = HttpsConfig::from_worker(&config(&[("ssl.keystore.type", "PEM"), ("ssl.keystore.location", &plain)])).unwrap();
        assert_eq!(ok.client_auth, ClientAuth::None);
        HttpsConfig::from_worker(&config(&[("ssl.keystore.location", &encrypted), ("ssl.key.password", "s3cret")])).unwrap();
        let err = HttpsConfig::from_worker(&config(&[("ssl.keystore.location", &encrypted)])).unwrap_err();
        assert!(matches!(err, ListenerConfigError::KeyPasswordMissing { .. }), "{err}");
        assert!(err.to_string().contains("ssl.key.password"), "{err}");
        let err = HttpsConfig::from_worker(&config(&[("ssl.keystore.location", &encrypted), ("ssl.key.password", "wrong")])).unwrap_err();
        assert!(matches!(err, ListenerConfigError::KeyDecrypt { .. }), "{err}");
        // Inline PEM, as Kafka's ssl.keystore.key / ssl.keystore.certificate.chain.
        HttpsConfig::from_worker(&config(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.key", KEY),
            ("ssl.keystore.certificate.chain", CERT),
        ]))
        .unwrap();
    }

    #[test]
    fn prefixed_keys_replace_the_plain_set() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), "good.pem", &format!("{KEY}{CERT}"));
        let ca = write(dir.path(), "ca.pem", CERT);
        // The prefixed keystore wins over a plain one that does not exist.
        let cfg = config(&[("ssl.keystore.location", "/nonexistent/keystore.pem"), ("listeners.https.ssl.keystore.location", &good)]);
        HttpsConfig::from_worker(&cfg).unwrap();
        // Without a prefixed key the plain set applies, and its missing file is named in the error.
        let err = HttpsConfig::from_worker(&config(&[("ssl.keystore.location", "/nonexistent/keystore.pem")])).unwrap_err();
        assert!(matches!(err, ListenerConfigError::Read { ref key, .. } if key == "ssl.keystore.location"), "{err}");
        // All or nothing, as Kafka: once a prefixed key is set, a plain ssl.truststore.location is not read.
        let cfg = config(&[
            ("listeners.https.ssl.keystore.location", &good),
            ("listeners.https.ssl.client.auth", "required"),
            ("ssl.truststore.location", &ca),
        ]);
        let err = HttpsConfig::from_worker(&cfg).unwrap_err();
        assert!(matches!(err, ListenerConfigError::NoTruststore { .. }), "{err}");
        assert!(err.to_string().contains("listeners.https.ssl.truststore.location"), "{err}");
        let cfg = config(&[
            ("listeners.https.ssl.keystore.location", &good),
            ("listeners.https.ssl.client.auth", "required"),
            ("listeners.https.ssl.truststore.type", "PEM"),
            ("listeners.https.ssl.truststore.location", &ca),
        ]);
        assert_eq!(HttpsConfig::from_worker(&cfg).unwrap().client_auth, ClientAuth::Required);
    }

    /// A PKCS12 truststore made by `openssl pkcs12 -export -nokeys` lacks the Java trusted-certificate attribute
    /// keytool writes; its certificates are meant all the same, as the Kafka clients' truststore reads them. Before
    /// the fix the REST listener refused it as holding no certificate.
    #[test]
    fn pkcs12_truststore_made_by_openssl_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), "good.pem", &format!("{KEY}{CERT}"));
        let trust = dir.path().join("trust.p12");
        std::fs::write(&trust, include_bytes!("testdata/truststore-openssl.p12")).unwrap();
        let trust = trust.display().to_string();
        let with_password = |password: &str| {
            config(&[
                ("ssl.keystore.location", &good),
                ("ssl.client.auth", "required"),
                ("ssl.truststore.location", &trust),
                ("ssl.truststore.password", password),
            ])
        };
        let https = HttpsConfig::from_worker(&with_password("changeit")).unwrap();
        assert_eq!(https.client_auth, ClientAuth::Required);
        let err = HttpsConfig::from_worker(&with_password("wrong")).unwrap_err();
        assert!(matches!(err, ListenerConfigError::Pkcs12 { .. }), "{err}");
    }

    #[test]
    fn invalid_settings_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), "good.pem", &format!("{KEY}{CERT}"));
        let cert_only = write(dir.path(), "cert.pem", CERT);
        let err = HttpsConfig::from_worker(&Config::new()).unwrap_err();
        assert!(matches!(err, ListenerConfigError::NoKeystore { .. }), "{err}");
        assert!(err.to_string().contains("ssl.keystore.location"), "{err}");
        let err = HttpsConfig::from_worker(&config(&[("ssl.keystore.location", &cert_only)])).unwrap_err();
        assert!(matches!(err, ListenerConfigError::NoPrivateKey { .. }), "{err}");
        let err = HttpsConfig::from_worker(&config(&[("ssl.keystore.location", &good), ("ssl.keystore.type", "JKS")])).unwrap_err();
        assert!(matches!(err, ListenerConfigError::UnsupportedStoreType { .. }), "{err}");
        let err = HttpsConfig::from_worker(&config(&[("ssl.keystore.location", &good), ("ssl.client.auth", "maybe")])).unwrap_err();
        assert!(matches!(err, ListenerConfigError::InvalidClientAuth { .. }), "{err}");
        let err = HttpsConfig::from_worker(&config(&[("ssl.keystore.location", &good), ("ssl.client.auth", "requested")])).unwrap_err();
        assert!(matches!(err, ListenerConfigError::NoTruststore { .. }), "{err}");
        let err = HttpsConfig::from_worker(&config(&[("ssl.keystore.location", &good), ("ssl.enabled.protocols", "TLSv1.1")])).unwrap_err();
        assert!(matches!(err, ListenerConfigError::NoProtocol { .. }), "{err}");
        let err = HttpsConfig::from_worker(&config(&[
            ("ssl.keystore.location", &good),
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.password", "x"),
        ]))
        .unwrap_err();
        assert!(matches!(err, ListenerConfigError::Pkcs12 { .. }), "{err}");
    }
}
