//! Kafka's Java client security settings (`security.protocol`, `sasl.*`, `ssl.*`) in librdkafka's terms.
//!
//! Kafka Connect users configure TLS and SASL with the Java client's keys: a `sasl.jaas.config` line, JKS, PKCS12 or
//! PEM stores, `sasl.mechanism`. librdkafka names the same things differently (`sasl.username`, `ssl.ca.location`,
//! `sasl.mechanisms`) and refuses keys it does not know, so the security keys of every client go through [`translate`]
//! once they are merged (the worker's top level, then `<prefix>.`, then the connector's `<prefix>.override.`).
//!
//! - Keys librdkafka has with the same meaning pass as given, so configs written for librdkafka keep working.
//! - Java-only keys with no equivalent come back in [`Translated::ignored`] (to be logged once at start) and never
//!   reach librdkafka, which would refuse them.
//! - As in Kafka, `ssl.*` counts only when `security.protocol` is `SSL` or `SASL_SSL`, and `sasl.*` only when it is
//!   `SASL_*`: the worker's top-level `ssl.*` keys may be there for the REST listener alone.
//! - Errors name the key and say what to do; they never contain a password, a secret or the JAAS line.
//!
//! | Kafka (Java client) | librdkafka |
//! |---|---|
//! | `security.protocol` | `security.protocol` (checked: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`) |
//! | `sasl.mechanism` | `sasl.mechanisms` (`GSSAPI`, `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`, `OAUTHBEARER`) |
//! | `sasl.jaas.config` with `PlainLoginModule` / `ScramLoginModule` `username`, `password` | `sasl.username`, `sasl.password` |
//! | `sasl.jaas.config` with `OAuthBearerLoginModule` `clientId`, `clientSecret`, `scope`, `extension_<n>` | `sasl.oauthbearer.method=oidc`, `sasl.oauthbearer.client.id`, `.client.secret`, `.scope`, `.extensions` |
//! | `sasl.jaas.config` with `OAuthBearerLoginModule` `unsecuredLogin*` options | `enable.sasl.oauthbearer.unsecure.jwt=true`, `sasl.oauthbearer.config` |
//! | `sasl.jaas.config` with `Krb5LoginModule` `keyTab`, `principal`, `serviceName` | `sasl.kerberos.keytab`, `sasl.kerberos.principal`, `sasl.kerberos.service.name` |
//! | `sasl.oauthbearer.token.endpoint.url`, `sasl.oauthbearer.scope` | same keys |
//! | `sasl.oauthbearer.client.credentials.client.id` / `.client.secret` (Kafka 4.1) | `sasl.oauthbearer.client.id` / `.client.secret` |
//! | `sasl.oauthbearer.jwt.retriever.class` (`...JwtBearerJwtRetriever`) | `sasl.oauthbearer.grant.type=urn:ietf:params:oauth:grant-type:jwt-bearer` |
//! | `ssl.truststore.location`, PEM | `ssl.ca.location` |
//! | `ssl.truststore.location`, PKCS12 (+ `ssl.truststore.password`) | `ssl.ca.pem` (its certificates, read here) |
//! | `ssl.truststore.certificates` | `ssl.ca.pem` |
//! | `ssl.keystore.location`, PKCS12 (+ `ssl.keystore.password`) | `ssl.keystore.location`, `ssl.keystore.password` |
//! | `ssl.keystore.location`, PEM (key and chain in one file) | `ssl.certificate.location` and `ssl.key.location`, both that file |
//! | `ssl.keystore.key`, `ssl.keystore.certificate.chain` | `ssl.key.pem`, `ssl.certificate.pem` |
//! | `ssl.key.password` | `ssl.key.password` |
//! | `ssl.endpoint.identification.algorithm` empty / `https` | `none` / `https` |
//! | JKS or JCEKS store | an error: convert it with `keytool -importkeystore ... -deststoretype PKCS12` |
//!
//! Only the store files are read: to check them, so a wrong path or password fails at start with the key named, and
//! to turn a PKCS12 truststore into PEM, which librdkafka cannot read itself. Nothing is logged here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use connect_core::Config;

/// The keys [`translate`] reads: `security.protocol`, `sasl.*` and `ssl.*`. Other client keys go to librdkafka as
/// they are.
pub fn is_security_key(key: &str) -> bool {
    key == "security.protocol" || key.starts_with("sasl.") || key.starts_with("ssl.")
}

/// Keys whose values are secrets, in Kafka's naming or librdkafka's: their values must never be logged.
pub fn is_secret(key: &str) -> bool {
    matches!(
        key,
        "sasl.jaas.config"
            | "sasl.password"
            | "sasl.oauthbearer.client.secret"
            | "sasl.oauthbearer.client.credentials.client.secret"
            | "sasl.oauthbearer.config"
            | "sasl.oauthbearer.assertion.private.key.passphrase"
            | "sasl.oauthbearer.assertion.private.key.pem"
            | "ssl.key.password"
            | "ssl.key.pem"
            | "ssl.keystore.password"
            | "ssl.keystore.key"
            | "ssl.truststore.password"
    )
}

/// The librdkafka settings for one client, and the keys left out.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Translated {
    /// librdkafka keys and values, each key once, in key order.
    pub set: Vec<(String, String)>,
    /// Keys (or JAAS options) not passed to librdkafka, with why: to be logged once at start.
    pub ignored: Vec<Ignored>,
}

impl Translated {
    /// The value given to a librdkafka key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.set.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Whether the clients speak TLS and SASL (`security.protocol`, PLAINTEXT when unset).
    pub fn layers(&self) -> (bool, bool) {
        self.get("security.protocol").and_then(protocol_layers).unwrap_or((false, false))
    }
}

/// TLS and SASL of an upper-case `security.protocol` value; `None` for one Kafka does not know.
fn protocol_layers(protocol: &str) -> Option<(bool, bool)> {
    match protocol {
        "PLAINTEXT" => Some((false, false)),
        "SSL" => Some((true, false)),
        "SASL_PLAINTEXT" => Some((false, true)),
        "SASL_SSL" => Some((true, true)),
        _ => None,
    }
}

/// Secret values are hidden, so a `{:?}` in a log line cannot leak them.
impl fmt::Debug for Translated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set: Vec<(&str, &str)> =
            self.set.iter().map(|(k, v)| (k.as_str(), if is_secret(k) { "<hidden>" } else { v.as_str() })).collect();
        f.debug_struct("Translated").field("set", &set).field("ignored", &self.ignored).finish()
    }
}

/// A key (or `sasl.jaas.config option <name>`) that does not reach librdkafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub key: String,
    pub reason: &'static str,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

const JAVA_ONLY: &str = "a Java client setting that librdkafka has no equivalent for";
const NO_TLS: &str = "security.protocol does not use TLS (set SSL or SASL_SSL to use it)";
const NO_SASL: &str = "security.protocol does not use SASL (set SASL_PLAINTEXT or SASL_SSL to use it)";
const UNUSED: &str = "not used with the other settings given";
const JAVA_CIPHER_NAMES: &str =
    "Java (IANA) cipher suite names: librdkafka takes OpenSSL names, e.g. ECDHE-RSA-AES128-GCM-SHA256 (set those to choose suites)";
const JAVA_KINIT: &str = "Java's path to kinit: librdkafka's sasl.kerberos.kinit.cmd is a whole command line, and its default runs kinit";
const JAAS_OPTION: &str = "a sasl.jaas.config option that librdkafka has no equivalent for";

/// A security setting that cannot work; the client is not made. No variant holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum SecurityConfigError {
    /// Only for keys whose values are not secret: protocol, mechanism, store type, algorithm.
    #[error("{key}={value} is not supported: use {expected}")]
    InvalidValue { key: String, value: String, expected: &'static str },
    #[error(
        "{key}={path} is a {kind} store, which librdkafka cannot read: convert it with `keytool -importkeystore -srckeystore {path} -destkeystore {converted} -deststoretype PKCS12`, then set {key}={converted} and {type_key}=PKCS12"
    )]
    JavaKeyStore { key: &'static str, path: String, kind: &'static str, converted: String, type_key: &'static str },
    #[error("{key}: cannot read {path}: {source}")]
    Read { key: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{key}={path} is a PKCS12 store: set {password_key} to its password")]
    StorePasswordMissing { key: &'static str, path: String, password_key: &'static str },
    #[error("{key}={path}: cannot open the PKCS12 store (is {password_key} right?): {message}")]
    Pkcs12 { key: &'static str, path: String, password_key: &'static str, message: String },
    #[error("{what}: no certificate in it (expected a PEM block -----BEGIN CERTIFICATE-----)")]
    NoCertificate { what: String },
    #[error("{what}: no private key in it (expected a PEM block such as -----BEGIN PRIVATE KEY-----)")]
    NoPrivateKey { what: String },
    #[error("{what}: the private key is encrypted: set ssl.key.password")]
    KeyPasswordMissing { what: String },
    #[error("{first} and {second} are both set: set only one of them")]
    Exclusive { first: &'static str, second: &'static str },
    #[error("{key} is set but {missing} is not: set both")]
    Incomplete { key: &'static str, missing: &'static str },
    #[error("sasl.jaas.config: {0}")]
    Jaas(String),
    #[error(
        "sasl.jaas.config: the login module {module} is not supported: connect-rs runs no Java code, and understands org.apache.kafka.common.security.plain.PlainLoginModule, org.apache.kafka.common.security.scram.ScramLoginModule, org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule and com.sun.security.auth.module.Krb5LoginModule"
    )]
    UnknownLoginModule { module: String },
    #[error("sasl.jaas.config: {module} needs the option {option}")]
    JaasOptionMissing { module: &'static str, option: String },
    #[error(
        "sasl.jaas.config uses {module}, which does not go with {mechanism_key}={mechanism}: set sasl.mechanism={expected}, or use the login module of {mechanism}"
    )]
    MechanismMismatch { module: &'static str, mechanism_key: &'static str, mechanism: &'static str, expected: &'static str },
    #[error(
        "sasl.jaas.config uses {module} but sasl.mechanism is not set, and Kafka's default mechanism is GSSAPI (Kerberos): set sasl.mechanism={expected}"
    )]
    MechanismMissing { module: &'static str, expected: &'static str },
    #[error("{first} and {second} both give librdkafka's {target}, with different values: keep one of them")]
    Conflict { first: String, second: String, target: String },
    #[error("{key}: {reason}")]
    Unsupported { key: &'static str, reason: &'static str },
    #[error("{what} needs {missing}")]
    Missing { what: &'static str, missing: &'static str },
}

type Result<T> = std::result::Result<T, SecurityConfigError>;

/// librdkafka keys under `ssl.` and `sasl.` (librdkafka 2.12's CONFIGURATION.md) that either mean the same as Kafka's
/// key of that name or exist in librdkafka only: passed as given. `ssl.keystore.*`, `ssl.endpoint.identification.algorithm`,
/// `sasl.mechanism(s)` and `sasl.kerberos.kinit.cmd` are handled on their own.
const LIBRDKAFKA_KEYS: &[&str] = &[
    "ssl.cipher.suites",
    "ssl.curves.list",
    "ssl.sigalgs.list",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.ca.certificate.stores",
    "ssl.crl.location",
    "ssl.providers",
    "ssl.engine.location",
    "ssl.engine.id",
    "sasl.kerberos.service.name",
    "sasl.kerberos.principal",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.keytab",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.grant.type",
    "sasl.oauthbearer.assertion.algorithm",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
    "sasl.oauthbearer.assertion.file",
    "sasl.oauthbearer.assertion.claim.aud",
    "sasl.oauthbearer.assertion.claim.exp.seconds",
    "sasl.oauthbearer.assertion.claim.iss",
    "sasl.oauthbearer.assertion.claim.jti.include",
    "sasl.oauthbearer.assertion.claim.nbf.seconds",
    "sasl.oauthbearer.assertion.claim.sub",
    "sasl.oauthbearer.assertion.jwt.template.file",
    "sasl.oauthbearer.metadata.authentication.type",
];

/// The same setting under another name: (Kafka's name or a librdkafka alias, librdkafka's name). Aliases are renamed
/// too, so that two spellings with different values are a [`SecurityConfigError::Conflict`], not a silent pick.
const RENAMED: &[(&str, &str)] = &[
    ("sasl.oauthbearer.client.credentials.client.id", "sasl.oauthbearer.client.id"),
    ("sasl.oauthbearer.client.credentials.client.secret", "sasl.oauthbearer.client.secret"),
    ("sasl.oauthbearer.assertion.template.file", "sasl.oauthbearer.assertion.jwt.template.file"),
];

const JAAS: &str = "sasl.jaas.config";
const TRUSTSTORE_TYPE: &str = "ssl.truststore.type";
const TRUSTSTORE_LOCATION: &str = "ssl.truststore.location";
const TRUSTSTORE_PASSWORD: &str = "ssl.truststore.password";
const TRUSTSTORE_CERTIFICATES: &str = "ssl.truststore.certificates";
const KEYSTORE_TYPE: &str = "ssl.keystore.type";
const KEYSTORE_LOCATION: &str = "ssl.keystore.location";
const KEYSTORE_PASSWORD: &str = "ssl.keystore.password";
const KEYSTORE_KEY: &str = "ssl.keystore.key";
const KEYSTORE_CHAIN: &str = "ssl.keystore.certificate.chain";
const ENDPOINT_IDENTIFICATION: &str = "ssl.endpoint.identification.algorithm";
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Translate the security keys of one client. `keys` is the merged client config (worker top level, then
/// `<prefix>.`, then the connector's `<prefix>.override.`); keys outside [`is_security_key`] are not looked at.
pub fn translate(keys: &Config) -> std::result::Result<Translated, SecurityConfigError> {
    let mut t = Translator::new(keys);
    let (tls, sasl) = t.protocol()?;
    if tls {
        t.endpoint_identification()?;
        t.truststore()?;
        t.keystore()?;
        t.cipher_suites();
    }
    if sasl {
        t.sasl()?;
    }
    t.pass_through(tls, sasl)?;
    if sasl {
        t.check_oidc()?;
    }
    Ok(t.finish())
}

struct Translator<'a> {
    keys: BTreeMap<&'a str, &'a str>,
    /// Keys handled (or explicitly ignored) by a step; the rest pass through or are ignored at the end.
    used: BTreeSet<String>,
    /// librdkafka key -> (value, the key it came from, for conflict errors).
    set: BTreeMap<String, (String, String)>,
    ignored: Vec<Ignored>,
}

impl<'a> Translator<'a> {
    fn new(config: &'a Config) -> Self {
        let keys = config.iter().filter(|(k, _)| is_security_key(k)).map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Translator { keys, used: BTreeSet::new(), set: BTreeMap::new(), ignored: Vec::new() }
    }

    /// A non-blank value, trimmed, without marking the key handled. Blank is unset, as Kafka's empty defaults.
    fn peek(&self, key: &str) -> Option<&'a str> {
        self.keys.get(key).copied().map(str::trim).filter(|v| !v.is_empty())
    }

    /// [`Self::peek`], marking the key handled.
    fn take(&mut self, key: &str) -> Option<&'a str> {
        self.used.insert(key.to_string());
        self.peek(key)
    }

    /// A non-blank value kept as written (passwords, inline PEM), marking the key handled.
    fn take_text(&mut self, key: &str) -> Option<&'a str> {
        self.used.insert(key.to_string());
        self.keys.get(key).copied().filter(|v| !v.trim().is_empty())
    }

    fn value(&self, target: &str) -> Option<&str> {
        self.set.get(target).map(|(v, _)| v.as_str())
    }

    fn put(&mut self, target: &str, value: impl Into<String>, source: &str) -> Result<()> {
        let value = value.into();
        match self.set.get(target) {
            Some((existing, first)) if *existing != value => {
                Err(SecurityConfigError::Conflict { first: first.clone(), second: source.to_string(), target: target.to_string() })
            }
            Some(_) => Ok(()),
            None => {
                self.set.insert(target.to_string(), (value, source.to_string()));
                Ok(())
            }
        }
    }

    fn ignore(&mut self, key: impl Into<String>, reason: &'static str) {
        let key = key.into();
        self.used.insert(key.clone());
        self.ignored.push(Ignored { key, reason });
    }

    /// `security.protocol`: which of TLS and SASL are in use. Unset is Kafka's and librdkafka's PLAINTEXT.
    fn protocol(&mut self) -> Result<(bool, bool)> {
        let Some(value) = self.take("security.protocol") else {
            return Ok((false, false));
        };
        let upper = value.to_ascii_uppercase();
        let modes = protocol_layers(&upper).ok_or_else(|| SecurityConfigError::InvalidValue {
            key: "security.protocol".into(),
            value: value.to_string(),
            expected: "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
        })?;
        // librdkafka compares enum values case-insensitively; Kafka's upper-case form is kept.
        self.put("security.protocol", upper, "security.protocol")?;
        Ok(modes)
    }

    /// Kafka's empty value turns host name checks off; librdkafka spells that `none` and refuses an empty value.
    fn endpoint_identification(&mut self) -> Result<()> {
        let Some(raw) = self.keys.get(ENDPOINT_IDENTIFICATION).copied() else {
            return Ok(());
        };
        self.used.insert(ENDPOINT_IDENTIFICATION.to_string());
        let value = raw.trim();
        let algorithm = if value.is_empty() || value.eq_ignore_ascii_case("none") {
            "none"
        } else if value.eq_ignore_ascii_case("https") {
            "https"
        } else {
            return Err(SecurityConfigError::InvalidValue {
                key: ENDPOINT_IDENTIFICATION.into(),
                value: value.to_string(),
                expected: "https, or an empty value to skip the broker host name check",
            });
        };
        self.put(ENDPOINT_IDENTIFICATION, algorithm, ENDPOINT_IDENTIFICATION)
    }

    /// The CA certificates brokers are checked against: a PEM file by path, PKCS12 or inline PEM as `ssl.ca.pem`.
    fn truststore(&mut self) -> Result<()> {
        let declared = self.take(TRUSTSTORE_TYPE);
        let location = self.take(TRUSTSTORE_LOCATION);
        let inline = self.take_text(TRUSTSTORE_CERTIFICATES);
        let password = self.take_text(TRUSTSTORE_PASSWORD);
        match (location, inline) {
            (Some(_), Some(_)) => Err(SecurityConfigError::Exclusive { first: TRUSTSTORE_LOCATION, second: TRUSTSTORE_CERTIFICATES }),
            (Some(path), None) => {
                let bytes = read_store(TRUSTSTORE_LOCATION, path)?;
                let what = format!("{TRUSTSTORE_LOCATION}={path}");
                match store_kind(parse_store_type(TRUSTSTORE_TYPE, declared)?, &bytes) {
                    StoreKind::Pem => {
                        if !has_certificate(&String::from_utf8_lossy(&bytes)) {
                            return Err(SecurityConfigError::NoCertificate { what });
                        }
                        if password.is_some() {
                            self.ignore(TRUSTSTORE_PASSWORD, UNUSED);
                        }
                        self.put("ssl.ca.location", path, TRUSTSTORE_LOCATION)
                    }
                    StoreKind::Pkcs12 => {
                        let archive = open_pkcs12(&bytes, password, TRUSTSTORE_LOCATION, path, TRUSTSTORE_PASSWORD)?;
                        let ders = pkcs12_trust_anchors(&archive);
                        if ders.is_empty() {
                            return Err(SecurityConfigError::NoCertificate { what });
                        }
                        // librdkafka reads no PKCS12 truststore, but takes the certificates as PEM text.
                        let pem: String = ders.iter().map(|der| pem_block("CERTIFICATE", der)).collect();
                        self.put("ssl.ca.pem", pem, TRUSTSTORE_LOCATION)
                    }
                    kind => Err(java_store_error(TRUSTSTORE_LOCATION, path, kind, TRUSTSTORE_TYPE)),
                }
            }
            (None, Some(text)) => {
                if let Some(declared) = declared.filter(|t| !t.eq_ignore_ascii_case("PEM")) {
                    return Err(SecurityConfigError::InvalidValue {
                        key: TRUSTSTORE_TYPE.into(),
                        value: declared.to_string(),
                        expected: "PEM with ssl.truststore.certificates",
                    });
                }
                let pem = normalize_pem(text);
                if !has_certificate(&pem) {
                    return Err(SecurityConfigError::NoCertificate { what: TRUSTSTORE_CERTIFICATES.into() });
                }
                if password.is_some() {
                    self.ignore(TRUSTSTORE_PASSWORD, UNUSED);
                }
                self.put("ssl.ca.pem", pem, TRUSTSTORE_CERTIFICATES)
            }
            (None, None) => {
                self.ignore_unused(&[(TRUSTSTORE_TYPE, declared), (TRUSTSTORE_PASSWORD, password)]);
                Ok(())
            }
        }
    }

    /// The client's own key and certificate: PKCS12 by path (librdkafka reads it), a PEM file by path, or inline PEM.
    fn keystore(&mut self) -> Result<()> {
        let declared = self.take(KEYSTORE_TYPE);
        let location = self.take(KEYSTORE_LOCATION);
        let password = self.take_text(KEYSTORE_PASSWORD);
        let key = self.take_text(KEYSTORE_KEY);
        let chain = self.take_text(KEYSTORE_CHAIN);
        // Passed through as it is (librdkafka's key of the same name decrypts PEM keys); read here only to check.
        let key_password = self.peek("ssl.key.password").is_some();
        if let Some(path) = location {
            if key.is_some() {
                return Err(SecurityConfigError::Exclusive { first: KEYSTORE_LOCATION, second: KEYSTORE_KEY });
            }
            if chain.is_some() {
                return Err(SecurityConfigError::Exclusive { first: KEYSTORE_LOCATION, second: KEYSTORE_CHAIN });
            }
            let bytes = read_store(KEYSTORE_LOCATION, path)?;
            let what = format!("{KEYSTORE_LOCATION}={path}");
            return match store_kind(parse_store_type(KEYSTORE_TYPE, declared)?, &bytes) {
                StoreKind::Pkcs12 => {
                    let password = password.ok_or_else(|| SecurityConfigError::StorePasswordMissing {
                        key: KEYSTORE_LOCATION,
                        path: path.to_string(),
                        password_key: KEYSTORE_PASSWORD,
                    })?;
                    // librdkafka opens it itself; opening it here too makes a wrong password or an empty store an
                    // error at start that names the key, not a handshake failure later.
                    let archive = open_pkcs12(&bytes, Some(password), KEYSTORE_LOCATION, path, KEYSTORE_PASSWORD)?;
                    if archive.keys.is_empty() {
                        return Err(SecurityConfigError::NoPrivateKey { what });
                    }
                    if archive.certs.is_empty() {
                        return Err(SecurityConfigError::NoCertificate { what });
                    }
                    self.put("ssl.keystore.location", path, KEYSTORE_LOCATION)?;
                    self.put("ssl.keystore.password", password, KEYSTORE_PASSWORD)
                }
                StoreKind::Pem => {
                    check_key_pem(&String::from_utf8_lossy(&bytes), &what, key_password, true)?;
                    if password.is_some() {
                        self.ignore(KEYSTORE_PASSWORD, UNUSED);
                    }
                    // OpenSSL's certificate-chain and private-key file readers each skip the other's PEM blocks, so
                    // Kafka's one-file PEM keystore serves as both.
                    self.put("ssl.certificate.location", path, KEYSTORE_LOCATION)?;
                    self.put("ssl.key.location", path, KEYSTORE_LOCATION)
                }
                kind => Err(java_store_error(KEYSTORE_LOCATION, path, kind, KEYSTORE_TYPE)),
            };
        }
        match (key, chain) {
            (Some(key), Some(chain)) => {
                if let Some(declared) = declared.filter(|t| !t.eq_ignore_ascii_case("PEM")) {
                    return Err(SecurityConfigError::InvalidValue {
                        key: KEYSTORE_TYPE.into(),
                        value: declared.to_string(),
                        expected: "PEM with ssl.keystore.key and ssl.keystore.certificate.chain",
                    });
                }
                let key = normalize_pem(key);
                check_key_pem(&key, KEYSTORE_KEY, key_password, false)?;
                let chain = normalize_pem(chain);
                if !has_certificate(&chain) {
                    return Err(SecurityConfigError::NoCertificate { what: KEYSTORE_CHAIN.into() });
                }
                if password.is_some() {
                    self.ignore(KEYSTORE_PASSWORD, UNUSED);
                }
                self.put("ssl.key.pem", key, KEYSTORE_KEY)?;
                self.put("ssl.certificate.pem", chain, KEYSTORE_CHAIN)
            }
            (Some(_), None) => Err(SecurityConfigError::Incomplete { key: KEYSTORE_KEY, missing: KEYSTORE_CHAIN }),
            (None, Some(_)) => Err(SecurityConfigError::Incomplete { key: KEYSTORE_CHAIN, missing: KEYSTORE_KEY }),
            (None, None) => {
                self.ignore_unused(&[(KEYSTORE_TYPE, declared), (KEYSTORE_PASSWORD, password)]);
                Ok(())
            }
        }
    }

    fn ignore_unused(&mut self, keys: &[(&'static str, Option<&str>)]) {
        for (key, value) in keys {
            if value.is_some() {
                self.ignore(*key, UNUSED);
            }
        }
    }

    /// Java's suite names (`TLS_ECDHE_RSA_...`) mean nothing to OpenSSL's cipher list and would fail the client;
    /// OpenSSL names pass through.
    fn cipher_suites(&mut self) {
        if let Some(value) = self.peek("ssl.cipher.suites") {
            if value.split([',', ':', ' ']).map(str::trim).any(|s| s.starts_with("TLS_") || s.starts_with("SSL_")) {
                self.ignore("ssl.cipher.suites", JAVA_CIPHER_NAMES);
            }
        }
    }

    /// `sasl.mechanism` and `sasl.jaas.config`.
    fn sasl(&mut self) -> Result<()> {
        let mut mechanism: Option<(Mechanism, &'static str)> = None;
        for key in ["sasl.mechanism", "sasl.mechanisms"] {
            if let Some(value) = self.take(key) {
                let m = Mechanism::parse(value).ok_or_else(|| SecurityConfigError::InvalidValue {
                    key: key.into(),
                    value: value.to_string(),
                    expected: "GSSAPI, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
                })?;
                // Both spellings go to one librdkafka key, so different values are a conflict error.
                self.put("sasl.mechanisms", m.name(), key)?;
                if mechanism.is_none() {
                    mechanism = Some((m, key));
                }
            }
        }
        let jaas = self.take(JAAS).map(parse_jaas).transpose().map_err(SecurityConfigError::Jaas)?;
        let (module, mut options) = match jaas {
            Some(jaas) => {
                let module = LoginModule::from_class(&jaas.module)
                    .ok_or_else(|| SecurityConfigError::UnknownLoginModule { module: displayable_class(&jaas.module) })?;
                (Some(module), jaas.options)
            }
            None => (None, BTreeMap::new()),
        };
        if let Some(module) = module {
            match mechanism {
                // Kafka's default mechanism is GSSAPI: a PLAIN line without sasl.mechanism fails there too.
                None if module != LoginModule::Kerberos => {
                    return Err(SecurityConfigError::MechanismMissing { module: module.name(), expected: module.expected() });
                }
                Some((m, key)) if !module.accepts(m) => {
                    return Err(SecurityConfigError::MechanismMismatch {
                        module: module.name(),
                        mechanism_key: key,
                        mechanism: m.name(),
                        expected: module.expected(),
                    });
                }
                _ => {}
            }
            match module {
                LoginModule::Plain | LoginModule::Scram => self.username_password(module, &mut options)?,
                LoginModule::Kerberos => self.kerberos(&mut options)?,
                LoginModule::OAuthBearer => {}
            }
        }
        if matches!(mechanism, Some((Mechanism::OAuthBearer, _))) {
            self.oauthbearer(&mut options)?;
        }
        // Only options Kafka's login modules document are named: with an unquoted value that has a space in it, what
        // follows the space parses as another option, whose name is then a piece of the value (a password).
        let mut unknown = 0;
        for name in options.keys() {
            match documented_jaas_option(name) {
                Some(shown) => self.ignore(format!("{JAAS} option {shown}"), JAAS_OPTION),
                None => unknown += 1,
            }
        }
        if unknown > 0 {
            self.ignore(
                format!("{JAAS}: {unknown} unrecognised option(s), names not shown"),
                "an unquoted value with a space in it reads as more options, so their names could be parts of a password; quote the values",
            );
        }
        Ok(())
    }

    fn username_password(&mut self, module: LoginModule, options: &mut BTreeMap<String, String>) -> Result<()> {
        let missing = |option: &str| SecurityConfigError::JaasOptionMissing { module: module.name(), option: option.to_string() };
        let username = options.remove("username").ok_or_else(|| missing("username"))?;
        let password = options.remove("password").ok_or_else(|| missing("password"))?;
        if options.remove("tokenauth").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Err(SecurityConfigError::Unsupported {
                key: JAAS,
                reason: "tokenauth=true (a delegation token) is not supported by librdkafka: use the SCRAM user's own credentials",
            });
        }
        self.put("sasl.username", username, JAAS)?;
        self.put("sasl.password", password, JAAS)
    }

    fn kerberos(&mut self, options: &mut BTreeMap<String, String>) -> Result<()> {
        for (option, target) in
            [("keyTab", "sasl.kerberos.keytab"), ("principal", "sasl.kerberos.principal"), ("serviceName", "sasl.kerberos.service.name")]
        {
            if let Some(value) = options.remove(option) {
                self.put(target, value, JAAS)?;
            }
        }
        // What librdkafka's default kinit command does anyway with a keytab.
        for implied in ["useKeyTab", "storeKey", "doNotPrompt"] {
            options.remove(implied);
        }
        Ok(())
    }

    /// OAUTHBEARER: OIDC client credentials (Kafka's `OAuthBearerLoginCallbackHandler`, or Kafka 4.1's config keys)
    /// become librdkafka's built-in OIDC; `unsecuredLogin*` options its unsecured JWT for development.
    fn oauthbearer(&mut self, options: &mut BTreeMap<String, String>) -> Result<()> {
        const HANDLER: &str = "sasl.login.callback.handler.class";
        const RETRIEVER: &str = "sasl.oauthbearer.jwt.retriever.class";
        // Kafka 3.1-3.3 has it in `...oauthbearer.secured.`, later versions in `...oauthbearer.`.
        let handler = self.peek(HANDLER).is_some_and(|c| c.ends_with(".OAuthBearerLoginCallbackHandler"));
        if handler {
            self.used.insert(HANDLER.to_string());
        }
        let retriever = match self.peek(RETRIEVER) {
            Some(c) if c.ends_with(".JwtBearerJwtRetriever") => Some(true),
            Some(c) if c.ends_with(".ClientCredentialsJwtRetriever") || c.ends_with(".DefaultJwtRetriever") => Some(false),
            _ => None,
        };
        if retriever.is_some() {
            self.used.insert(RETRIEVER.to_string());
        }
        let client_id_key =
            ["sasl.oauthbearer.client.id", "sasl.oauthbearer.client.credentials.client.id"].iter().any(|k| self.peek(k).is_some());
        let unsecured = options.keys().any(|k| k.starts_with("unsecuredLogin"));
        let token_url = self.peek("sasl.oauthbearer.token.endpoint.url").is_some();
        let oidc = options.contains_key("clientId") || client_id_key || handler || retriever.is_some() || (token_url && !unsecured);
        if oidc {
            self.put("sasl.oauthbearer.method", "oidc", "sasl.mechanism=OAUTHBEARER with OIDC settings")?;
            for (option, target) in [
                ("clientId", "sasl.oauthbearer.client.id"),
                ("clientSecret", "sasl.oauthbearer.client.secret"),
                ("scope", "sasl.oauthbearer.scope"),
            ] {
                if let Some(value) = options.remove(option) {
                    self.put(target, value, JAAS)?;
                }
            }
            let names: Vec<String> = options.keys().filter(|k| k.starts_with("extension_")).cloned().collect();
            let mut extensions = Vec::new();
            for option in names {
                let Some(value) = options.remove(&option) else { continue };
                let name = option.strip_prefix("extension_").unwrap_or_default();
                if name.contains([',', '=']) || value.contains([',', '=']) {
                    return Err(SecurityConfigError::Unsupported {
                        key: JAAS,
                        reason: "an extension_ option has ',' or '=' in it, which sasl.oauthbearer.extensions cannot carry",
                    });
                }
                extensions.push(format!("{name}={value}"));
            }
            if !extensions.is_empty() {
                self.put("sasl.oauthbearer.extensions", extensions.join(","), JAAS)?;
            }
            if retriever == Some(true) {
                self.put("sasl.oauthbearer.grant.type", JWT_BEARER_GRANT, RETRIEVER)?;
            }
        } else if unsecured {
            self.unsecured_jwt(options)?;
        }
        Ok(())
    }

    /// Kafka's unsecured JWT options as librdkafka's `sasl.oauthbearer.config` (space-separated `name=value`).
    fn unsecured_jwt(&mut self, options: &mut BTreeMap<String, String>) -> Result<()> {
        let principal_claim = options.remove("unsecuredLoginPrincipalClaimName");
        let scope_claim = options.remove("unsecuredLoginScopeClaimName");
        let principal_option = format!("unsecuredLoginStringClaim_{}", principal_claim.as_deref().unwrap_or("sub"));
        let principal = options.remove(&principal_option).ok_or_else(|| SecurityConfigError::JaasOptionMissing {
            module: LoginModule::OAuthBearer.name(),
            option: principal_option.clone(),
        })?;
        let mut parts: Vec<(String, String)> = Vec::new();
        if let Some(claim) = principal_claim {
            parts.push(("principalClaimName".into(), claim));
        }
        parts.push(("principal".into(), principal));
        let scope_name = scope_claim.clone().unwrap_or_else(|| "scope".into());
        if let Some(claim) = scope_claim {
            parts.push(("scopeClaimName".into(), claim));
        }
        if let Some(list) = options.remove(&format!("unsecuredLoginListClaim_{scope_name}")) {
            // Kafka's list claims start with their delimiter (",a,b"); librdkafka's scope is comma-separated.
            let mut chars = list.chars();
            if let Some(delimiter) = chars.next() {
                let scopes: Vec<&str> = chars.as_str().split(delimiter).filter(|s| !s.is_empty()).collect();
                if !scopes.is_empty() {
                    parts.push(("scope".into(), scopes.join(",")));
                }
            }
        } else if let Some(scope) = options.remove(&format!("unsecuredLoginStringClaim_{scope_name}")) {
            parts.push(("scope".into(), scope));
        }
        if let Some(seconds) = options.remove("unsecuredLoginLifetimeSeconds") {
            parts.push(("lifeSeconds".into(), seconds));
        }
        let names: Vec<String> = options.keys().filter(|k| k.starts_with("unsecuredLoginExtension_")).cloned().collect();
        for option in names {
            if let Some(value) = options.remove(&option) {
                parts.push((format!("extension_{}", option.strip_prefix("unsecuredLoginExtension_").unwrap_or_default()), value));
            }
        }
        if parts.iter().any(|(_, v)| v.is_empty() || v.contains(char::is_whitespace)) {
            return Err(SecurityConfigError::Unsupported {
                key: JAAS,
                reason: "an unsecuredLogin option is empty or has spaces, which sasl.oauthbearer.config cannot carry",
            });
        }
        let config: Vec<String> = parts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.put("enable.sasl.oauthbearer.unsecure.jwt", "true", JAAS)?;
        self.put("sasl.oauthbearer.config", config.join(" "), JAAS)
    }

    /// What is left: librdkafka's own keys (and Kafka's keys of the same meaning) pass, the rest is reported.
    fn pass_through(&mut self, tls: bool, sasl: bool) -> Result<()> {
        let rest: Vec<(&'a str, &'a str)> = self.keys.iter().filter(|(k, _)| !self.used.contains(**k)).map(|(k, v)| (*k, *v)).collect();
        for (key, value) in rest {
            if value.trim().is_empty() {
                // Unset, as Kafka reads an empty value for a key without default.
                continue;
            }
            if key.starts_with("ssl.") && !tls {
                self.ignore(key, NO_TLS);
            } else if key.starts_with("sasl.") && !sasl {
                self.ignore(key, NO_SASL);
            } else if key == "sasl.kerberos.kinit.cmd" && !value.trim().contains(char::is_whitespace) {
                self.ignore(key, JAVA_KINIT);
            } else if let Some((_, target)) = RENAMED.iter().find(|(from, _)| *from == key) {
                self.put(target, value, key)?;
            } else if LIBRDKAFKA_KEYS.contains(&key) {
                self.put(key, value, key)?;
            } else {
                self.ignore(key, JAVA_ONLY);
            }
        }
        Ok(())
    }

    /// librdkafka's OIDC checks its settings only when the client is made; checked here to name Kafka's keys.
    fn check_oidc(&self) -> Result<()> {
        let oidc = self.value("sasl.oauthbearer.method").is_some_and(|m| m.trim().eq_ignore_ascii_case("oidc"));
        if !oidc || self.value("sasl.mechanisms") != Some(Mechanism::OAuthBearer.name()) {
            return Ok(());
        }
        let url = self.value("sasl.oauthbearer.token.endpoint.url").ok_or(SecurityConfigError::Missing {
            what: "OAUTHBEARER with an OAuth/OIDC identity provider",
            missing: "sasl.oauthbearer.token.endpoint.url (the provider's token endpoint)",
        })?;
        if url.trim().get(..5).is_some_and(|scheme| scheme.eq_ignore_ascii_case("file:")) {
            return Err(SecurityConfigError::Unsupported {
                key: "sasl.oauthbearer.token.endpoint.url",
                reason: "librdkafka fetches tokens from an http(s) endpoint only: a file: URL (a token in a file) is not supported",
            });
        }
        let jwt_bearer = self.value("sasl.oauthbearer.grant.type").is_some_and(|g| g.trim() == JWT_BEARER_GRANT);
        if !jwt_bearer {
            if self.value("sasl.oauthbearer.client.id").is_none() {
                return Err(SecurityConfigError::Missing {
                    what: "OAUTHBEARER with OAuth client credentials",
                    missing: "a client id: clientId in sasl.jaas.config, or sasl.oauthbearer.client.credentials.client.id",
                });
            }
            if self.value("sasl.oauthbearer.client.secret").is_none() {
                return Err(SecurityConfigError::Missing {
                    what: "OAUTHBEARER with OAuth client credentials",
                    missing: "a client secret: clientSecret in sasl.jaas.config, or sasl.oauthbearer.client.credentials.client.secret",
                });
            }
        }
        Ok(())
    }

    fn finish(self) -> Translated {
        let mut ignored = self.ignored;
        ignored.sort_by(|a, b| a.key.cmp(&b.key));
        ignored.dedup_by(|a, b| a.key == b.key);
        Translated { set: self.set.into_iter().map(|(k, (v, _))| (k, v)).collect(), ignored }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    Gssapi,
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
}

impl Mechanism {
    /// librdkafka compares mechanism names case-sensitively, in upper case.
    fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_uppercase().as_str() {
            "GSSAPI" => Some(Mechanism::Gssapi),
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(Mechanism::ScramSha512),
            "OAUTHBEARER" => Some(Mechanism::OAuthBearer),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mechanism::Gssapi => "GSSAPI",
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoginModule {
    Plain,
    Scram,
    OAuthBearer,
    Kerberos,
}

impl LoginModule {
    fn from_class(class: &str) -> Option<Self> {
        match class {
            "org.apache.kafka.common.security.plain.PlainLoginModule" => Some(LoginModule::Plain),
            "org.apache.kafka.common.security.scram.ScramLoginModule" => Some(LoginModule::Scram),
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule" => Some(LoginModule::OAuthBearer),
            "com.sun.security.auth.module.Krb5LoginModule" | "com.ibm.security.auth.module.Krb5LoginModule" => Some(LoginModule::Kerberos),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            LoginModule::Plain => "PlainLoginModule",
            LoginModule::Scram => "ScramLoginModule",
            LoginModule::OAuthBearer => "OAuthBearerLoginModule",
            LoginModule::Kerberos => "Krb5LoginModule",
        }
    }

    fn accepts(self, mechanism: Mechanism) -> bool {
        match self {
            LoginModule::Plain => mechanism == Mechanism::Plain,
            LoginModule::Scram => matches!(mechanism, Mechanism::ScramSha256 | Mechanism::ScramSha512),
            LoginModule::OAuthBearer => mechanism == Mechanism::OAuthBearer,
            LoginModule::Kerberos => mechanism == Mechanism::Gssapi,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            LoginModule::Plain => "PLAIN",
            LoginModule::Scram => "SCRAM-SHA-256 or SCRAM-SHA-512",
            LoginModule::OAuthBearer => "OAUTHBEARER",
            LoginModule::Kerberos => "GSSAPI",
        }
    }
}

/// A login module name if it reads as a Java class (`a.b.C`): a malformed line could begin with a secret, which an
/// error must not repeat.
fn displayable_class(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    let identifier = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    let looks_like_class = match parts.split_last() {
        Some((class, packages)) => {
            packages.len() >= 2
                && parts.iter().all(identifier)
                && packages.iter().all(|p| p.starts_with(|c: char| c.is_ascii_lowercase()))
                && class.starts_with(|c: char| c.is_ascii_uppercase())
        }
        None => false,
    };
    if looks_like_class {
        name.to_string()
    } else {
        "(not shown: the line does not start with a Java class name)".to_string()
    }
}

/// How an option of Kafka's client login modules (Plain, Scram, Krb5, OAuthBearer), as their documentation lists
/// them, may be named in a log: as it is, or for a family (`extension_NAME`) by its prefix only, since the rest is
/// free text. `None`: not one of them, and not to be named.
fn documented_jaas_option(name: &str) -> Option<String> {
    const OPTIONS: [&str; 25] = [
        "username",
        "password",
        "tokenauth",
        "useKeyTab",
        "storeKey",
        "keyTab",
        "principal",
        "serviceName",
        "useTicketCache",
        "ticketCache",
        "renewTGT",
        "doNotPrompt",
        "refreshKrb5Config",
        "isInitiator",
        "debug",
        "clearPass",
        "tryFirstPass",
        "useFirstPass",
        "storePass",
        "clientId",
        "clientSecret",
        "scope",
        "unsecuredLoginPrincipalClaimName",
        "unsecuredLoginLifetimeSeconds",
        "unsecuredLoginScopeClaimName",
    ];
    const PREFIXES: [&str; 5] =
        ["unsecuredLoginStringClaim_", "unsecuredLoginNumberClaim_", "unsecuredLoginListClaim_", "unsecuredLoginExtension_", "extension_"];
    if OPTIONS.contains(&name) {
        return Some(name.to_string());
    }
    PREFIXES.iter().find(|p| name.starts_with(*p)).map(|p| format!("{p}..."))
}

/// One login module of a `sasl.jaas.config` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Jaas {
    module: String,
    options: BTreeMap<String, String>,
}

const CONTROL_FLAGS: [&str; 4] = ["required", "requisite", "sufficient", "optional"];
const EXPECTED_MODULE: &str = "expected a login module class name, e.g. org.apache.kafka.common.security.plain.PlainLoginModule";

/// Parse `LoginModuleClass controlFlag (name=value)*;` as Kafka's `JaasConfig` does with Java's `StreamTokenizer`:
/// values in double or single quotes (backslash escapes, so `;`, `=` and spaces inside are kept) or bare words,
/// `//` and `/* */` comments between tokens, exactly one login module. The closing `;` may be left out. Errors give a
/// position and what was expected, never the text, which holds passwords.
fn parse_jaas(text: &str) -> std::result::Result<Jaas, String> {
    let mut p = JaasParser { chars: text.chars().collect(), pos: 0 };
    p.skip_blank();
    let module = p.word().ok_or_else(|| p.error(EXPECTED_MODULE))?;
    p.skip_blank();
    let flag = p.word().ok_or_else(|| p.error("expected the control flag (required) after the login module class name"))?;
    if !CONTROL_FLAGS.iter().any(|f| f.eq_ignore_ascii_case(&flag)) {
        return Err(p.error("the control flag after the login module must be required, requisite, sufficient or optional"));
    }
    let mut options = BTreeMap::new();
    loop {
        p.skip_blank();
        match p.peek() {
            None => break,
            Some(';') => {
                p.pos += 1;
                p.skip_blank();
                if p.peek().is_some() {
                    return Err(p.error("a client takes exactly one login module: remove what follows the first ';'"));
                }
                break;
            }
            Some(_) => {
                let name = p.word().ok_or_else(|| p.error("expected an option name (name=value) or the closing ';'"))?;
                p.skip_blank();
                if p.peek() != Some('=') {
                    return Err(p.error("expected '=' after an option name"));
                }
                p.pos += 1;
                p.skip_blank();
                let value = p.value()?;
                options.insert(name, value);
            }
        }
    }
    Ok(Jaas { module, options })
}

struct JaasParser {
    chars: Vec<char>,
    pos: usize,
}

impl JaasParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn error(&self, reason: &str) -> String {
        format!("at character {}: {reason}", self.pos + 1)
    }

    fn skip_blank(&mut self) {
        loop {
            match (self.peek(), self.chars.get(self.pos + 1).copied()) {
                (Some(c), _) if c.is_whitespace() => self.pos += 1,
                (Some('/'), Some('/')) => {
                    while self.peek().is_some_and(|c| c != '\n' && c != '\r') {
                        self.pos += 1;
                    }
                }
                (Some('/'), Some('*')) => {
                    self.pos += 2;
                    while self.pos < self.chars.len() && !(self.chars[self.pos] == '*' && self.chars.get(self.pos + 1) == Some(&'/')) {
                        self.pos += 1;
                    }
                    self.pos = (self.pos + 2).min(self.chars.len());
                }
                _ => break,
            }
        }
    }

    /// A class name, control flag or option name: letters, digits, `.`, `_`, `$`, `-`.
    fn word(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '$' | '-')) {
            self.pos += 1;
        }
        (self.pos > start).then(|| self.chars[start..self.pos].iter().collect())
    }

    fn value(&mut self) -> std::result::Result<String, String> {
        match self.peek() {
            Some(quote @ ('"' | '\'')) => self.quoted(quote),
            Some(c) if c != ';' => {
                // A bare value runs to the next blank or ';' (Kafka allows fewer characters; more is harmless).
                let start = self.pos;
                while self.peek().is_some_and(|c| !c.is_whitespace() && !matches!(c, ';' | '"' | '\'')) {
                    self.pos += 1;
                }
                Ok(self.chars[start..self.pos].iter().collect())
            }
            _ => Err(self.error("expected a value after '='")),
        }
    }

    /// StreamTokenizer's quoted strings: `\n`-style and octal escapes, any other escaped character as itself.
    fn quoted(&mut self, quote: char) -> std::result::Result<String, String> {
        let start = self.pos;
        let unclosed = || format!("at character {}: the quoted value is not closed on its line", start + 1);
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else { return Err(unclosed()) };
            self.pos += 1;
            match c {
                c if c == quote => return Ok(out),
                '\n' | '\r' => return Err(unclosed()),
                '\\' => {
                    let Some(escaped) = self.peek() else { return Err(unclosed()) };
                    self.pos += 1;
                    match escaped {
                        'a' => out.push('\u{7}'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'v' => out.push('\u{b}'),
                        '0'..='7' => {
                            // Up to three octal digits, three only when the first is 0-3 (at most \377).
                            let mut n = escaped.to_digit(8).unwrap_or(0);
                            let more = if escaped <= '3' { 2 } else { 1 };
                            for _ in 0..more {
                                match self.peek().and_then(|d| d.to_digit(8)) {
                                    Some(d) => {
                                        n = n * 8 + d;
                                        self.pos += 1;
                                    }
                                    None => break,
                                }
                            }
                            out.push(char::from_u32(n).unwrap_or(char::REPLACEMENT_CHARACTER));
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Pem,
    Pkcs12,
    Jks,
    Jceks,
}

fn parse_store_type(key: &'static str, declared: Option<&str>) -> Result<Option<StoreKind>> {
    match declared {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("PEM") => Ok(Some(StoreKind::Pem)),
        Some(v) if v.eq_ignore_ascii_case("PKCS12") => Ok(Some(StoreKind::Pkcs12)),
        Some(v) if v.eq_ignore_ascii_case("JKS") => Ok(Some(StoreKind::Jks)),
        Some(v) if v.eq_ignore_ascii_case("JCEKS") => Ok(Some(StoreKind::Jceks)),
        Some(v) => Err(SecurityConfigError::InvalidValue { key: key.into(), value: v.to_string(), expected: "PEM or PKCS12" }),
    }
}

/// What a store file is. Java's default type is JKS, so a file is looked at rather than trusted to its type: JKS and
/// JCEKS by their magic numbers, whatever the type says (Java itself reads a PKCS12 file declared JKS, so JKS means
/// "look"); then the declared PEM or PKCS12; then PEM if it has PEM text, else PKCS12 (DER).
fn store_kind(declared: Option<StoreKind>, bytes: &[u8]) -> StoreKind {
    match bytes.get(..4) {
        Some([0xFE, 0xED, 0xFE, 0xED]) => StoreKind::Jks,
        Some([0xCE, 0xCE, 0xCE, 0xCE]) => StoreKind::Jceks,
        _ => match declared {
            Some(kind @ (StoreKind::Pem | StoreKind::Pkcs12)) => kind,
            _ if bytes.windows(10).any(|w| w == b"-----BEGIN") => StoreKind::Pem,
            _ => StoreKind::Pkcs12,
        },
    }
}

fn java_store_error(key: &'static str, path: &str, kind: StoreKind, type_key: &'static str) -> SecurityConfigError {
    let original = Path::new(path);
    let mut converted = original.with_extension("p12");
    if converted == original {
        converted = original.with_extension("converted.p12");
    }
    SecurityConfigError::JavaKeyStore {
        key,
        path: path.to_string(),
        kind: if kind == StoreKind::Jceks { "JCEKS" } else { "JKS" },
        converted: converted.display().to_string(),
        type_key,
    }
}

fn read_store(key: &'static str, path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| SecurityConfigError::Read { key, path: path.into(), source })
}

fn open_pkcs12(
    bytes: &[u8],
    password: Option<&str>,
    key: &'static str,
    path: &str,
    password_key: &'static str,
) -> Result<p12_keystore::Pkcs12Archive> {
    // Java opens a truststore without a password (skipping the integrity check); an empty one does that here.
    p12_keystore::Pkcs12Archive::from_pkcs12(bytes, password.unwrap_or("")).map_err(|e| match password {
        None => SecurityConfigError::StorePasswordMissing { key, path: path.to_string(), password_key },
        Some(_) => SecurityConfigError::Pkcs12 { key, path: path.to_string(), password_key, message: e.to_string() },
    })
}

/// The certificates of a PKCS12 truststore, once each, leaving out those paired with a private key (a key's own
/// certificate is no trust anchor). Every other certificate bag counts: a truststore made by `openssl pkcs12
/// -export -nokeys` lacks the Java trusted-certificate attribute that keytool writes, and is meant all the same.
/// The Kafka clients' truststores and the REST listener's read them alike.
pub(crate) fn pkcs12_trust_anchors(archive: &p12_keystore::Pkcs12Archive) -> Vec<&[u8]> {
    let mut ders: Vec<&[u8]> = Vec::new();
    for bag in archive.certs.iter().filter(|bag| bag.local_key_id.is_none()) {
        if !ders.contains(&bag.cert.as_der()) {
            ders.push(bag.cert.as_der());
        }
    }
    ders
}

/// The labels of the PEM blocks in `text` (`CERTIFICATE`, `PRIVATE KEY`, ...).
fn pem_labels(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("-----BEGIN ").filter_map(move |(i, m)| {
        let rest = &text[i + m.len()..];
        rest.find("-----").map(|end| &rest[..end])
    })
}

fn has_certificate(text: &str) -> bool {
    pem_labels(text).any(|label| label.ends_with("CERTIFICATE"))
}

/// A PEM keystore's key: present, and decryptable by librdkafka only with `ssl.key.password`; in a keystore file,
/// with its certificate chain.
fn check_key_pem(text: &str, what: &str, key_password: bool, with_certificate: bool) -> Result<()> {
    if !pem_labels(text).any(|label| label.ends_with("PRIVATE KEY")) {
        return Err(SecurityConfigError::NoPrivateKey { what: what.to_string() });
    }
    let encrypted = pem_labels(text).any(|label| label == "ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED");
    if encrypted && !key_password {
        return Err(SecurityConfigError::KeyPasswordMissing { what: what.to_string() });
    }
    if with_certificate && !has_certificate(text) {
        return Err(SecurityConfigError::NoCertificate { what: what.to_string() });
    }
    Ok(())
}

fn pem_block(label: &str, der: &[u8]) -> String {
    pem_block_base64(label, &base64::engine::general_purpose::STANDARD.encode(der))
}

fn pem_block_base64(label: &str, encoded: &str) -> String {
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 is ASCII, so 64-byte chunks are whole characters.
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Inline PEM as OpenSSL reads it: Kafka accepts PEM whose line breaks became spaces (a one-line properties value),
/// OpenSSL wants 64-character lines. Blocks with headers (legacy encrypted keys: `Proc-Type:`) are kept as written,
/// since their headers need their own lines. Text outside blocks is dropped.
fn normalize_pem(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after = &rest[begin + "-----BEGIN ".len()..];
        let Some(label_len) = after.find("-----") else { break };
        let label = &after[..label_len];
        let body_and_rest = &after[label_len + "-----".len()..];
        let end = format!("-----END {label}-----");
        let Some(body_len) = body_and_rest.find(&end) else { break };
        let body = &body_and_rest[..body_len];
        if body.contains(':') {
            out.push_str(&format!("-----BEGIN {label}-----{body}{end}\n"));
        } else {
            out.push_str(&pem_block_base64(label, &body.split_whitespace().collect::<String>()));
        }
        rest = &body_and_rest[body_len + end.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway P-256 key and self-signed certificate (CN=localhost), shared with the REST TLS tests; the
    // encrypted key's password is s3cret.
    const CERT: &str = include_str!("../rest/testdata/cert.pem");
    const KEY: &str = include_str!("../rest/testdata/key.pem");
    const ENCRYPTED_KEY: &str = include_str!("../rest/testdata/key-encrypted.pem");

    /// `openssl pkcs12 -export -nokeys -in cert.pem -passout pass:changeit` (OpenSSL 3.0): a truststore holding CERT,
    /// without the Java trusted-certificate attribute keytool writes.
    const TRUSTSTORE_P12: &[u8] = include_bytes!("../rest/testdata/truststore-openssl.p12");

    /// `openssl pkcs12 -export -inkey key.pem -in cert.pem -name client -passout pass:changeit` (OpenSSL 3.0).
    const KEYSTORE_P12: &str = concat!(
        "MIIEaQIBAzCCBB8GCSqGSIb3DQEHAaCCBBAEggQMMIIECDCCAqIGCSqGSIb3DQEHBqCCApMwggKPAgEAMIICiAYJKoZIhvcNAQcBMFcGCSqGSIb3DQEF",
        "DTBKMCkGCSqGSIb3DQEFDDAcBAirckxJ2881zgICCAAwDAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEHyZdaRpgEM/awU6hoUEeLSAggIgcw4XhiZb",
        "WvZCw+Za+pBviQjOGAlEKDh2+u3Qlqw8EkPf/OjLy+UQEQurvBo8s361vAOrmD42vewuTq0LUbJBFraM6xRW6Uz4sY0dohbgp+ZKRdhdVLqLqxMfbRuz",
        "4fjMm11k9pA7mKzfH9D0KhhgWEo831BnK/JRoi3G0AhLMhhkzgC2UjyYBOEYpuxS8GUBPSnnyLaQ6f1TcEAkKyr5N7VBhmXBWV0X18YEYTAI1qGllXRT",
        "/fIVLX473FztMqp9xLwDey9nV+xRN/jMqRVxpWirZtORT4MNFvRx2mna40TFwOuzBSL/A9HvQE/9gHmMKh+W7qEEUdA+QMX0qjCQl4sskqMnybhNavdZ",
        "0LstSwh5IvRxKBKIXhCE8rMAM7x+Bbh7YUOrpkRPj8ychWvBMaUbFUay6HmEczQSVz+nybQBC+FdEcyUX7ArNb/U/TM9OboGI8piVFdCr3x7sX1EeZdz",
        "3T03aJ9/aurdUxwtVVTA23mapQGgwNLWd5D79AKcss1kTleXYjYoxfSIZrmD0z8QggRDTBHY+nVLrB0HGuh3bUL/xu2QfGaE7H1g2RrswaWHXmSs09w+",
        "6g6BlD2Ta7N8SCAEQXOsyjk61mf+nJXVyb26fbKWs0xoXoVvU5zJD9jnP0JsJX04JOUmaszWDb6OKD3FK5TRClo0hcUElaFyLeM54n3NzQP1RT8L0VTJ",
        "LsJHnkYW97h2gO/Z4W5wRTCCAV4GCSqGSIb3DQEHAaCCAU8EggFLMIIBRzCCAUMGCyqGSIb3DQEMCgECoIHvMIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqG",
        "SIb3DQEFDDAcBAhus8CNeawRYQICCAAwDAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEHSIuJPGlOrTjnR3sccKjGIEgZAR4zYgVOzH8E3U/9MaMiUM",
        "EBSSx6YprC0UxEzaUjcujEHIZXtLTF8sIgc+EfOCHakzRCGBpW12Ir2mcyIwiQWAFtub9fAT1uGGlwQHhviEQC8L+31BRJtwOHdHzzutPlHwlraNqt0t",
        "pzTb19fYUHxxCSvBlmCh/cT9fQ5kZPDIDjRxbxeya9aX9S3XczB86pIxQjAbBgkqhkiG9w0BCRQxDh4MAGMAbABpAGUAbgB0MCMGCSqGSIb3DQEJFTEW",
        "BBSadUllI80eHcnDQFYcZ4kqkSeEdDBBMDEwDQYJYIZIAWUDBAIBBQAEIMfgZg/1zNzpCWW0OnKaJ7VoCXQmzTuCldEsi0wSxagEBAg32azGh5bOmgIC",
        "CAA=",
    );

    /// Stands for every secret in these tests: no error may contain it.
    const SECRET: &str = "S3cr3t-p4ss";

    const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
    const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
    const OAUTH: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn ok(pairs: &[(&str, &str)]) -> Translated {
        translate(&config(pairs)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(pairs: &[(&str, &str)]) -> SecurityConfigError {
        let e = translate(&config(pairs)).expect_err("expected an error");
        assert!(!e.to_string().contains(SECRET), "secret in error: {e}");
        assert!(!format!("{e:?}").contains(SECRET), "secret in error: {e:?}");
        e
    }

    fn ignored_keys(t: &Translated) -> Vec<&str> {
        t.ignored.iter().map(|i| i.key.as_str()).collect()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    fn decode(text: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(text).unwrap()
    }

    fn plain_line(password: &str) -> String {
        format!(r#"{PLAIN} required username="alice" password="{password}";"#)
    }

    #[test]
    fn plain_jaas_becomes_username_and_password() {
        let jaas = plain_line(SECRET);
        let t = ok(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN"), ("sasl.jaas.config", &jaas)]);
        assert_eq!(t.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(t.get("sasl.mechanisms"), Some("PLAIN"));
        assert_eq!(t.get("sasl.username"), Some("alice"));
        assert_eq!(t.get("sasl.password"), Some(SECRET));
        assert_eq!(t.get("sasl.jaas.config"), None);
        assert_eq!(t.get("sasl.mechanism"), None, "renamed to librdkafka's sasl.mechanisms");
        assert!(t.ignored.is_empty(), "{:?}", t.ignored);
        // The Debug form is safe to log.
        assert!(!format!("{t:?}").contains(SECRET), "{t:?}");
    }

    #[test]
    fn scram_jaas_with_both_mechanisms() {
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "scram-sha-512"] {
            let jaas = format!(r#"{SCRAM} required username="bob" password="{SECRET}";"#);
            let t = ok(&[("security.protocol", "sasl_plaintext"), ("sasl.mechanism", mechanism), ("sasl.jaas.config", &jaas)]);
            assert_eq!(t.get("security.protocol"), Some("SASL_PLAINTEXT"));
            assert_eq!(t.get("sasl.mechanisms"), Some(mechanism.to_ascii_uppercase().as_str()));
            assert_eq!(t.get("sasl.username"), Some("bob"));
            assert_eq!(t.get("sasl.password"), Some(SECRET));
        }
        // A delegation token is SCRAM with tokenauth=true, which librdkafka cannot do.
        let jaas = format!(r#"{SCRAM} required username="token" password="{SECRET}" tokenauth="true";"#);
        let e = err(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-256"), ("sasl.jaas.config", &jaas)]);
        assert!(e.to_string().contains("tokenauth"), "{e}");
    }

    #[test]
    fn oauthbearer_client_credentials_in_the_jaas_line() {
        let jaas =
            format!(r#"{OAUTH} required clientId="connect" clientSecret="{SECRET}" scope="kafka write" extension_logicalCluster="lkc-1";"#);
        let t = ok(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.login.callback.handler.class", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"),
            ("sasl.oauthbearer.token.endpoint.url", "https://idp.example/oauth2/token"),
            ("sasl.jaas.config", &jaas),
        ]);
        assert_eq!(t.get("sasl.mechanisms"), Some("OAUTHBEARER"));
        assert_eq!(t.get("sasl.oauthbearer.method"), Some("oidc"));
        assert_eq!(t.get("sasl.oauthbearer.client.id"), Some("connect"));
        assert_eq!(t.get("sasl.oauthbearer.client.secret"), Some(SECRET));
        assert_eq!(t.get("sasl.oauthbearer.scope"), Some("kafka write"));
        assert_eq!(t.get("sasl.oauthbearer.extensions"), Some("logicalCluster=lkc-1"));
        assert_eq!(t.get("sasl.oauthbearer.token.endpoint.url"), Some("https://idp.example/oauth2/token"));
        // Kafka's OIDC callback handler is what librdkafka's oidc method does: used, not reported.
        assert!(t.ignored.is_empty(), "{:?}", t.ignored);
        assert!(!format!("{t:?}").contains(SECRET), "{t:?}");
    }

    #[test]
    fn oauthbearer_client_credentials_as_kafka_4_1_keys() {
        let t = ok(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.jaas.config", &format!("{OAUTH} required ;")),
            ("sasl.oauthbearer.jwt.retriever.class", "org.apache.kafka.common.security.oauthbearer.ClientCredentialsJwtRetriever"),
            ("sasl.oauthbearer.client.credentials.client.id", "connect"),
            ("sasl.oauthbearer.client.credentials.client.secret", SECRET),
            ("sasl.oauthbearer.scope", "kafka"),
            ("sasl.oauthbearer.token.endpoint.url", "https://idp.example/token"),
        ]);
        assert_eq!(t.get("sasl.oauthbearer.method"), Some("oidc"));
        assert_eq!(t.get("sasl.oauthbearer.client.id"), Some("connect"));
        assert_eq!(t.get("sasl.oauthbearer.client.secret"), Some(SECRET));
        assert_eq!(t.get("sasl.oauthbearer.scope"), Some("kafka"));
        assert_eq!(t.get("sasl.oauthbearer.client.credentials.client.id"), None, "renamed, not passed twice");
        assert!(t.ignored.is_empty(), "{:?}", t.ignored);

        // The JWT bearer grant needs no client secret.
        let t = ok(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.oauthbearer.jwt.retriever.class", "org.apache.kafka.common.security.oauthbearer.JwtBearerJwtRetriever"),
            ("sasl.oauthbearer.assertion.private.key.file", "/etc/connect/assertion.key"),
            ("sasl.oauthbearer.assertion.template.file", "/etc/connect/template.json"),
            ("sasl.oauthbearer.token.endpoint.url", "https://idp.example/token"),
        ]);
        assert_eq!(t.get("sasl.oauthbearer.grant.type"), Some(JWT_BEARER_GRANT));
        assert_eq!(t.get("sasl.oauthbearer.assertion.private.key.file"), Some("/etc/connect/assertion.key"));
        assert_eq!(t.get("sasl.oauthbearer.assertion.jwt.template.file"), Some("/etc/connect/template.json"));
    }

    #[test]
    fn oauthbearer_settings_that_cannot_work_are_errors() {
        let jaas = format!(r#"{OAUTH} required clientId="connect" clientSecret="{SECRET}";"#);
        let base = [("security.protocol", "SASL_SSL"), ("sasl.mechanism", "OAUTHBEARER"), ("sasl.jaas.config", jaas.as_str())];
        let e = err(&base);
        assert!(matches!(e, SecurityConfigError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("sasl.oauthbearer.token.endpoint.url"), "{e}");
        let mut with_file_url = base.to_vec();
        with_file_url.push(("sasl.oauthbearer.token.endpoint.url", "file:///var/run/token.jwt"));
        let e = err(&with_file_url);
        assert!(matches!(e, SecurityConfigError::Unsupported { .. }), "{e}");
        let no_secret = format!(r#"{OAUTH} required clientId="connect";"#);
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.jaas.config", &no_secret),
            ("sasl.oauthbearer.token.endpoint.url", "https://idp.example/token"),
        ]);
        assert!(e.to_string().contains("clientSecret"), "{e}");
    }

    #[test]
    fn oauthbearer_unsecured_jwt_for_development() {
        let jaas = [
            OAUTH,
            "required",
            r#"unsecuredLoginStringClaim_sub="admin""#,
            r#"unsecuredLoginListClaim_scope=",read,write""#,
            r#"unsecuredLoginLifetimeSeconds="600""#,
            r#"unsecuredLoginExtension_traceId="123";"#,
        ]
        .join(" ");
        let t = ok(&[("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanism", "OAUTHBEARER"), ("sasl.jaas.config", &jaas)]);
        assert_eq!(t.get("enable.sasl.oauthbearer.unsecure.jwt"), Some("true"));
        assert_eq!(t.get("sasl.oauthbearer.config"), Some("principal=admin scope=read,write lifeSeconds=600 extension_traceId=123"));
        assert_eq!(t.get("sasl.oauthbearer.method"), None);
        let e = err(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.jaas.config", &format!(r#"{OAUTH} required unsecuredLoginLifetimeSeconds="600";"#)),
        ]);
        assert!(e.to_string().contains("unsecuredLoginStringClaim_sub"), "{e}");
    }

    #[test]
    fn kerberos_jaas_becomes_keytab_and_principal() {
        let jaas = [
            "com.sun.security.auth.module.Krb5LoginModule required",
            r#"useKeyTab=true storeKey=true keyTab="/etc/security/connect.keytab""#,
            r#"principal="connect/host@EXAMPLE.COM" debug=true;"#,
        ]
        .join(" ");
        // GSSAPI is Kafka's default mechanism: no sasl.mechanism needed.
        let t = ok(&[("security.protocol", "SASL_SSL"), ("sasl.jaas.config", &jaas), ("sasl.kerberos.service.name", "kafka")]);
        assert_eq!(t.get("sasl.kerberos.keytab"), Some("/etc/security/connect.keytab"));
        assert_eq!(t.get("sasl.kerberos.principal"), Some("connect/host@EXAMPLE.COM"));
        assert_eq!(t.get("sasl.kerberos.service.name"), Some("kafka"));
        assert_eq!(ignored_keys(&t), ["sasl.jaas.config option debug"]);
    }

    /// An unquoted password with a space in it: Kafka's parser (and ours) reads what follows the space as another
    /// option. Before the fix that option's name, a piece of the password, was logged as an ignored option.
    #[test]
    fn a_piece_of_an_unquoted_value_is_never_named_as_an_ignored_option() {
        let jaas = format!(
            r#"{SCRAM} required username="bob" password=first{SECRET} ZsecondPart{SECRET}=rest extension_third{SECRET}=x debug=true;"#
        );
        let t = ok(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-256"), ("sasl.jaas.config", &jaas)]);
        let ignored = ignored_keys(&t).join(" | ");
        assert!(!ignored.contains("secondPart") && !ignored.contains("third"), "a piece of the password named: {ignored}");
        assert!(ignored.contains("sasl.jaas.config option extension_..."), "a family is named by its prefix: {ignored}");
        assert!(ignored.contains("sasl.jaas.config option debug"), "known options are still named: {ignored}");
        assert!(ignored.contains("1 unrecognised"), "the unknown one is counted: {ignored}");
        assert!(!format!("{t:?}").contains(SECRET), "a piece of the password in the debug form: {t:?}");
    }

    #[test]
    fn mechanism_and_login_module_must_match() {
        let jaas = format!(r#"{SCRAM} required username="bob" password="{SECRET}";"#);
        let e = err(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN"), ("sasl.jaas.config", &jaas)]);
        assert!(matches!(e, SecurityConfigError::MechanismMismatch { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains("ScramLoginModule") && text.contains("sasl.mechanism=PLAIN"), "{text}");
        assert!(text.contains("SCRAM-SHA-256 or SCRAM-SHA-512"), "{text}");
    }

    #[test]
    fn plain_without_mechanism_is_an_error_as_kafka_defaults_to_gssapi() {
        let jaas = plain_line(SECRET);
        let e = err(&[("security.protocol", "SASL_SSL"), ("sasl.jaas.config", &jaas)]);
        assert!(matches!(e, SecurityConfigError::MechanismMissing { .. }), "{e}");
        assert!(e.to_string().contains("sasl.mechanism=PLAIN"), "{e}");
        assert!(e.to_string().contains("GSSAPI"), "{e}");
    }

    #[test]
    fn unknown_mechanism_and_protocol_are_errors() {
        let e = err(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "AWS_MSK_IAM")]);
        assert!(matches!(e, SecurityConfigError::InvalidValue { ref key, .. } if key == "sasl.mechanism"), "{e}");
        let e = err(&[("security.protocol", "TLS")]);
        assert!(matches!(e, SecurityConfigError::InvalidValue { ref key, .. } if key == "security.protocol"), "{e}");
    }

    #[test]
    fn jaas_values_quoted_or_bare() {
        let line = concat!(
            "  org.apache.kafka.common.security.plain.PlainLoginModule   REQUIRED /* a comment */\n",
            r#"    username=alice_1 password="a b;c=d \"q\" \\ \t" other='single "quoted" ; value' empty="" // comment"#,
            "\n    last=bare.value-1$ ;  ",
        );
        let jaas = parse_jaas(line).unwrap();
        assert_eq!(jaas.module, PLAIN);
        assert_eq!(jaas.options["username"], "alice_1");
        assert_eq!(jaas.options["password"], "a b;c=d \"q\" \\ \t");
        assert_eq!(jaas.options["other"], "single \"quoted\" ; value");
        assert_eq!(jaas.options["empty"], "");
        assert_eq!(jaas.options["last"], "bare.value-1$");
        // Octal escapes as Java's StreamTokenizer reads them; no closing ';' is accepted.
        let jaas = parse_jaas(r#"a.b.C optional k="\101\0611\7" x=1=2"#).unwrap();
        assert_eq!(jaas.options["k"], "A11\u{7}");
        assert_eq!(jaas.options["x"], "1=2");
    }

    #[test]
    fn jaas_syntax_errors_give_a_position_and_no_text() {
        let cases = [
            (format!(r#"{PLAIN} required password="{SECRET}"#), "not closed"),
            (format!("{PLAIN} required password=\"{SECRET}\nrest\";"), "not closed"),
            (format!(r#"{PLAIN} required username="a"; {PLAIN} required password="{SECRET}";"#), "exactly one login module"),
            (format!(r#"{PLAIN} username="a" password="{SECRET}";"#), "control flag"),
            (format!(r#"{PLAIN} required password "{SECRET}";"#), "'='"),
            (format!(r#"{PLAIN} required password=;"#), "value"),
            (format!(r#""{SECRET}" required;"#), "login module class name"),
            ("/* a comment and nothing else */".to_string(), "login module class name"),
        ];
        for (line, expected) in cases {
            let e = err(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN"), ("sasl.jaas.config", &line)]);
            assert!(matches!(e, SecurityConfigError::Jaas(_)), "{e}");
            let text = e.to_string();
            assert!(text.contains(expected) && text.contains("at character"), "{line:?}: {text}");
        }
    }

    #[test]
    fn unknown_login_module_is_named_unless_it_is_not_a_class_name() {
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.jaas.config", "software.amazon.msk.auth.iam.IAMLoginModule required;"),
        ]);
        assert!(matches!(e, SecurityConfigError::UnknownLoginModule { .. }), "{e}");
        assert!(e.to_string().contains("software.amazon.msk.auth.iam.IAMLoginModule"), "{e}");
        assert!(e.to_string().contains("PlainLoginModule"), "{e}");
        // A line that starts with a value instead of a class is not repeated.
        let not_a_class = format!("{SECRET} required;");
        let e = err(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN"), ("sasl.jaas.config", &not_a_class)]);
        assert!(matches!(e, SecurityConfigError::UnknownLoginModule { .. }), "{e}");
        // Short class names are not Kafka's modules either (Kafka itself would not find the class).
        let e = err(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN"), ("sasl.jaas.config", "PlainLoginModule required;")]);
        assert!(matches!(e, SecurityConfigError::UnknownLoginModule { .. }), "{e}");
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.jaas.config", &format!(r#"{PLAIN} required username="alice";"#)),
        ]);
        assert!(matches!(e, SecurityConfigError::JaasOptionMissing { .. }), "{e}");
        assert!(e.to_string().contains("password"), "{e}");
    }

    #[test]
    fn pem_truststore_file_is_passed_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let ca = write(dir.path(), "ca.pem", CERT.as_bytes());
        // No ssl.truststore.type (Java's default is JKS): the file says it is PEM.
        let t = ok(&[("security.protocol", "SSL"), ("ssl.truststore.location", &ca), ("ssl.truststore.password", SECRET)]);
        assert_eq!(t.get("ssl.ca.location"), Some(ca.as_str()));
        assert_eq!(t.get("ssl.truststore.location"), None);
        assert_eq!(ignored_keys(&t), ["ssl.truststore.password"], "a PEM file has no password");
        let t = ok(&[("security.protocol", "SSL"), ("ssl.truststore.type", "PEM"), ("ssl.truststore.location", &ca)]);
        assert_eq!(t.get("ssl.ca.location"), Some(ca.as_str()));
        let key_only = write(dir.path(), "key.pem", KEY.as_bytes());
        let e = err(&[("security.protocol", "SSL"), ("ssl.truststore.location", &key_only)]);
        assert!(matches!(e, SecurityConfigError::NoCertificate { .. }), "{e}");
        let e = err(&[("security.protocol", "SSL"), ("ssl.truststore.location", "/nonexistent/ca.pem")]);
        assert!(matches!(e, SecurityConfigError::Read { key: "ssl.truststore.location", .. }), "{e}");
    }

    #[test]
    fn pkcs12_truststore_becomes_inline_pem() {
        let dir = tempfile::tempdir().unwrap();
        let store = write(dir.path(), "truststore.p12", TRUSTSTORE_P12);
        for declared in [None, Some("PKCS12"), Some("JKS")] {
            let mut pairs = vec![("security.protocol", "SASL_SSL"), ("ssl.truststore.location", store.as_str())];
            pairs.push(("ssl.truststore.password", "changeit"));
            if let Some(declared) = declared {
                pairs.push(("ssl.truststore.type", declared));
            }
            let t = ok(&pairs);
            assert_eq!(t.get("ssl.ca.pem"), Some(CERT), "{declared:?}");
            assert_eq!(t.get("ssl.ca.location"), None);
            assert!(t.ignored.is_empty(), "{:?}", t.ignored);
        }
        let e = err(&[("security.protocol", "SSL"), ("ssl.truststore.location", &store), ("ssl.truststore.password", SECRET)]);
        assert!(matches!(e, SecurityConfigError::Pkcs12 { .. }), "{e}");
        assert!(e.to_string().contains("ssl.truststore.password"), "{e}");
        let e = err(&[("security.protocol", "SSL"), ("ssl.truststore.location", &store)]);
        assert!(matches!(e, SecurityConfigError::StorePasswordMissing { .. }), "{e}");
        assert!(e.to_string().contains("set ssl.truststore.password"), "{e}");
    }

    #[test]
    fn inline_truststore_certificates_on_one_line() {
        // A properties value continued with `\` loses its line breaks; OpenSSL needs them back.
        let one_line = CERT.replace('\n', " ");
        let t = ok(&[("security.protocol", "SSL"), ("ssl.truststore.type", "PEM"), ("ssl.truststore.certificates", &one_line)]);
        assert_eq!(t.get("ssl.ca.pem"), Some(CERT));
        let e = err(&[("security.protocol", "SSL"), ("ssl.truststore.certificates", "not pem")]);
        assert!(matches!(e, SecurityConfigError::NoCertificate { .. }), "{e}");
        let e = err(&[("security.protocol", "SSL"), ("ssl.truststore.certificates", CERT), ("ssl.truststore.location", "/tmp/ca.pem")]);
        assert!(matches!(e, SecurityConfigError::Exclusive { .. }), "{e}");
    }

    #[test]
    fn jks_stores_are_an_error_that_says_how_to_convert() {
        let dir = tempfile::tempdir().unwrap();
        // A JKS file starts with 0xFEEDFEED, a JCEKS file with 0xCECECECE.
        let jks = write(dir.path(), "truststore.jks", &[0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 0]);
        let jceks = write(dir.path(), "keystore.jceks", &[0xCE, 0xCE, 0xCE, 0xCE, 0, 0, 0, 2, 0, 0, 0, 0]);
        for declared in [None, Some("JKS"), Some("PKCS12")] {
            let mut pairs = vec![("security.protocol", "SSL"), ("ssl.truststore.location", jks.as_str())];
            pairs.push(("ssl.truststore.password", SECRET));
            if let Some(declared) = declared {
                pairs.push(("ssl.truststore.type", declared));
            }
            let e = err(&pairs);
            assert!(matches!(e, SecurityConfigError::JavaKeyStore { kind: "JKS", .. }), "{e}");
            let text = e.to_string();
            assert!(text.contains("keytool -importkeystore") && text.contains("-deststoretype PKCS12"), "{text}");
            assert!(text.contains(&format!("-srckeystore {jks}")), "{text}");
            assert!(text.contains("truststore.p12") && text.contains("ssl.truststore.type=PKCS12"), "{text}");
        }
        let e = err(&[("security.protocol", "SSL"), ("ssl.keystore.location", &jceks), ("ssl.keystore.password", SECRET)]);
        assert!(matches!(e, SecurityConfigError::JavaKeyStore { kind: "JCEKS", key: "ssl.keystore.location", .. }), "{e}");
        let e = err(&[("security.protocol", "SSL"), ("ssl.keystore.location", &jceks), ("ssl.keystore.type", "BCFKS")]);
        assert!(matches!(e, SecurityConfigError::InvalidValue { .. }), "{e}");
    }

    #[test]
    fn pkcs12_keystore_is_read_by_librdkafka_after_a_check() {
        let dir = tempfile::tempdir().unwrap();
        let store = write(dir.path(), "client.p12", &decode(KEYSTORE_P12));
        let t = ok(&[
            ("security.protocol", "SSL"),
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.location", &store),
            ("ssl.keystore.password", "changeit"),
            ("ssl.key.password", "changeit"),
        ]);
        assert_eq!(t.get("ssl.keystore.location"), Some(store.as_str()));
        assert_eq!(t.get("ssl.keystore.password"), Some("changeit"));
        assert_eq!(t.get("ssl.key.password"), Some("changeit"));
        assert!(t.ignored.is_empty(), "{:?}", t.ignored);
        let e = err(&[("security.protocol", "SSL"), ("ssl.keystore.location", &store), ("ssl.keystore.password", SECRET)]);
        assert!(matches!(e, SecurityConfigError::Pkcs12 { .. }), "{e}");
        let e = err(&[("security.protocol", "SSL"), ("ssl.keystore.location", &store)]);
        assert!(matches!(e, SecurityConfigError::StorePasswordMissing { password_key: "ssl.keystore.password", .. }), "{e}");
        // A truststore is no keystore: it has no private key.
        let trust = write(dir.path(), "trust.p12", TRUSTSTORE_P12);
        let e = err(&[("security.protocol", "SSL"), ("ssl.keystore.location", &trust), ("ssl.keystore.password", "changeit")]);
        assert!(matches!(e, SecurityConfigError::NoPrivateKey { .. }), "{e}");
    }

    #[test]
    fn pem_keystore_file_serves_as_certificate_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let plain = write(dir.path(), "client.pem", format!("{KEY}{CERT}").as_bytes());
        let t = ok(&[("security.protocol", "SSL"), ("ssl.keystore.type", "PEM"), ("ssl.keystore.location", &plain)]);
        assert_eq!(t.get("ssl.certificate.location"), Some(plain.as_str()));
        assert_eq!(t.get("ssl.key.location"), Some(plain.as_str()));
        assert_eq!(t.get("ssl.keystore.location"), None, "librdkafka's ssl.keystore.location is PKCS12 only");
        let encrypted = write(dir.path(), "enc.pem", format!("{ENCRYPTED_KEY}{CERT}").as_bytes());
        let t = ok(&[("security.protocol", "SSL"), ("ssl.keystore.location", &encrypted), ("ssl.key.password", "s3cret")]);
        assert_eq!(t.get("ssl.key.location"), Some(encrypted.as_str()));
        assert_eq!(t.get("ssl.key.password"), Some("s3cret"));
        let e = err(&[("security.protocol", "SSL"), ("ssl.keystore.location", &encrypted)]);
        assert!(matches!(e, SecurityConfigError::KeyPasswordMissing { .. }), "{e}");
        let cert_only = write(dir.path(), "cert.pem", CERT.as_bytes());
        let e = err(&[("security.protocol", "SSL"), ("ssl.keystore.location", &cert_only)]);
        assert!(matches!(e, SecurityConfigError::NoPrivateKey { .. }), "{e}");
        let key_only = write(dir.path(), "key.pem", KEY.as_bytes());
        let e = err(&[("security.protocol", "SSL"), ("ssl.keystore.location", &key_only)]);
        assert!(matches!(e, SecurityConfigError::NoCertificate { .. }), "{e}");
    }

    #[test]
    fn inline_keystore_key_and_chain() {
        let t = ok(&[
            ("security.protocol", "SSL"),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.key", &KEY.replace('\n', " ")),
            ("ssl.keystore.certificate.chain", CERT),
        ]);
        assert_eq!(t.get("ssl.key.pem"), Some(KEY));
        assert_eq!(t.get("ssl.certificate.pem"), Some(CERT));
        let e = err(&[("security.protocol", "SSL"), ("ssl.keystore.key", ENCRYPTED_KEY), ("ssl.keystore.certificate.chain", CERT)]);
        assert!(matches!(e, SecurityConfigError::KeyPasswordMissing { .. }), "{e}");
        let e = err(&[("security.protocol", "SSL"), ("ssl.keystore.key", KEY)]);
        assert!(matches!(e, SecurityConfigError::Incomplete { key: "ssl.keystore.key", missing: "ssl.keystore.certificate.chain" }), "{e}");
        let e = err(&[("security.protocol", "SSL"), ("ssl.keystore.location", "/tmp/k.p12"), ("ssl.keystore.key", KEY)]);
        assert!(matches!(e, SecurityConfigError::Exclusive { .. }), "{e}");
    }

    #[test]
    fn endpoint_identification_empty_means_none() {
        for (given, expected) in [("", "none"), ("  ", "none"), ("https", "https"), ("HTTPS", "https"), ("none", "none")] {
            let t = ok(&[("security.protocol", "SSL"), ("ssl.endpoint.identification.algorithm", given)]);
            assert_eq!(t.get("ssl.endpoint.identification.algorithm"), Some(expected), "{given:?}");
        }
        let e = err(&[("security.protocol", "SSL"), ("ssl.endpoint.identification.algorithm", "ldaps")]);
        assert!(matches!(e, SecurityConfigError::InvalidValue { .. }), "{e}");
    }

    #[test]
    fn java_only_keys_are_ignored_and_listed() {
        let t = ok(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.jaas.config", &format!(r#"{PLAIN} required username="alice" password="{SECRET}" unknownOption="x";"#)),
            ("ssl.keymanager.algorithm", "SunX509"),
            ("ssl.trustmanager.algorithm", "PKIX"),
            ("ssl.protocol", "TLSv1.3"),
            ("ssl.enabled.protocols", "TLSv1.2,TLSv1.3"),
            ("ssl.secure.random.implementation", "SHA1PRNG"),
            ("ssl.engine.factory.class", "com.example.Engine"),
            ("ssl.client.auth", "required"),
            ("ssl.cipher.suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            ("sasl.login.callback.handler.class", "com.example.Handler"),
            ("sasl.client.callback.handler.class", "com.example.Handler"),
            ("sasl.login.refresh.window.factor", "0.8"),
            ("sasl.kerberos.kinit.cmd", "/usr/bin/kinit"),
            ("ssl.truststore.type", "PKCS12"),
            ("ssl.keystore.password", SECRET),
            ("ssl.provider", ""),
        ]);
        assert_eq!(
            ignored_keys(&t),
            [
                "sasl.client.callback.handler.class",
                "sasl.jaas.config: 1 unrecognised option(s), names not shown",
                "sasl.kerberos.kinit.cmd",
                "sasl.login.callback.handler.class",
                "sasl.login.refresh.window.factor",
                "ssl.cipher.suites",
                "ssl.client.auth",
                "ssl.enabled.protocols",
                "ssl.engine.factory.class",
                "ssl.keymanager.algorithm",
                "ssl.keystore.password",
                "ssl.protocol",
                "ssl.secure.random.implementation",
                "ssl.trustmanager.algorithm",
                "ssl.truststore.type",
            ]
        );
        let librdkafka_keys: Vec<&str> = t.set.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(librdkafka_keys, ["sasl.mechanisms", "sasl.password", "sasl.username", "security.protocol"]);
        assert!(t.ignored.iter().all(|i| !i.to_string().contains(SECRET)));
    }

    #[test]
    fn librdkafka_keys_pass_through() {
        let t = ok(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "carol"),
            ("sasl.password", SECRET),
            ("ssl.ca.location", "/etc/ssl/certs"),
            ("ssl.certificate.location", "/etc/connect/client.crt"),
            ("ssl.key.location", "/etc/connect/client.key"),
            ("ssl.key.password", SECRET),
            ("ssl.cipher.suites", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"),
            ("ssl.crl.location", "/etc/connect/crl.pem"),
            ("sasl.kerberos.kinit.cmd", "kinit -R -t /etc/k.keytab -k connect"),
            ("sasl.kerberos.min.time.before.relogin", "60000"),
        ]);
        let expected = [
            ("sasl.kerberos.kinit.cmd", "kinit -R -t /etc/k.keytab -k connect"),
            ("sasl.kerberos.min.time.before.relogin", "60000"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.password", SECRET),
            ("sasl.username", "carol"),
            ("security.protocol", "SASL_SSL"),
            ("ssl.ca.location", "/etc/ssl/certs"),
            ("ssl.certificate.location", "/etc/connect/client.crt"),
            ("ssl.cipher.suites", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"),
            ("ssl.crl.location", "/etc/connect/crl.pem"),
            ("ssl.key.location", "/etc/connect/client.key"),
            ("ssl.key.password", SECRET),
        ];
        assert_eq!(t.set, expected.map(|(k, v)| (k.to_string(), v.to_string())));
        assert!(t.ignored.is_empty(), "{:?}", t.ignored);
    }

    #[test]
    fn keys_of_a_protocol_not_in_use_are_not_read() {
        // The worker's top-level ssl.* may serve the REST listener only: with PLAINTEXT (the default) the Kafka clients
        // neither read the stores nor pass the keys, as Kafka's clients do not.
        for protocol in [None, Some("PLAINTEXT")] {
            let mut pairs = vec![
                ("ssl.truststore.location", "/nonexistent/truststore.jks"),
                ("ssl.keystore.location", "/nonexistent/keystore.p12"),
                ("sasl.jaas.config", "not even JAAS"),
                ("sasl.mechanism", "NOT-A-MECHANISM"),
            ];
            if let Some(protocol) = protocol {
                pairs.push(("security.protocol", protocol));
            }
            let t = ok(&pairs);
            assert_eq!(t.set.iter().filter(|(k, _)| k != "security.protocol").count(), 0, "{t:?}");
            assert_eq!(ignored_keys(&t), ["sasl.jaas.config", "sasl.mechanism", "ssl.keystore.location", "ssl.truststore.location"]);
        }
        // SSL without SASL: the sasl.* keys are left out, the ssl.* ones used.
        let t = ok(&[("security.protocol", "SSL"), ("sasl.username", "x"), ("ssl.ca.location", "/etc/ssl/ca.pem")]);
        assert_eq!(t.get("ssl.ca.location"), Some("/etc/ssl/ca.pem"));
        assert_eq!(t.get("sasl.username"), None);
        assert_eq!(t.ignored, [Ignored { key: "sasl.username".into(), reason: NO_SASL }]);
        // Keys that are not security keys are not looked at.
        let t = ok(&[("linger.ms", "5"), ("listeners.https.ssl.keystore.location", "/x")]);
        assert!(t.set.is_empty() && t.ignored.is_empty(), "{t:?}");
    }

    #[test]
    fn two_spellings_with_different_values_conflict() {
        let e = err(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN"), ("sasl.mechanisms", "SCRAM-SHA-256")]);
        assert!(matches!(e, SecurityConfigError::Conflict { ref target, .. } if target == "sasl.mechanisms"), "{e}");
        // Same value in both spellings is fine.
        ok(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN"), ("sasl.mechanisms", "plain")]);
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.jaas.config", &plain_line(SECRET)),
            ("sasl.password", "another-secret"),
        ]);
        let text = e.to_string();
        assert!(text.contains("sasl.jaas.config") && text.contains("sasl.password"), "{text}");
        assert!(!text.contains("another-secret"), "{text}");
    }

    #[test]
    fn secrets_are_never_in_errors() {
        // err() checks every error for SECRET; these are the cases where a secret sits next to the mistake.
        let dir = tempfile::tempdir().unwrap();
        let store = write(dir.path(), "client.p12", &decode(KEYSTORE_P12));
        let bad_line = format!(r#"{PLAIN} required username=alice password={SECRET} extra"#);
        let cases: Vec<Vec<(&str, &str)>> = vec![
            vec![("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN"), ("sasl.jaas.config", bad_line.as_str())],
            vec![("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-256"), ("sasl.jaas.config", bad_line.as_str())],
            vec![("security.protocol", "SASL_SSL"), ("sasl.jaas.config", SECRET)],
            vec![("security.protocol", "SSL"), ("ssl.keystore.location", store.as_str()), ("ssl.keystore.password", SECRET)],
            vec![("security.protocol", "SSL"), ("ssl.truststore.location", store.as_str()), ("ssl.truststore.password", SECRET)],
            vec![("security.protocol", "SSL"), ("ssl.keystore.key", SECRET), ("ssl.keystore.certificate.chain", CERT)],
        ];
        for pairs in cases {
            err(&pairs);
        }
        assert!(is_secret("sasl.jaas.config") && is_secret("ssl.truststore.password") && is_secret("sasl.oauthbearer.client.secret"));
        assert!(!is_secret("sasl.username") && !is_secret("ssl.truststore.location"));
    }

    #[test]
    fn security_keys() {
        for key in ["security.protocol", "sasl.jaas.config", "ssl.truststore.location", "sasl.mechanisms"] {
            assert!(is_security_key(key), "{key}");
        }
        for key in ["bootstrap.servers", "enable.ssl.certificate.verification", "listeners.https.ssl.keystore.location"] {
            assert!(!is_security_key(key), "{key}");
        }
    }

    #[test]
    fn normalizes_pem_blocks() {
        assert_eq!(normalize_pem(&format!("junk {}", CERT.replace('\n', " "))), CERT);
        assert_eq!(normalize_pem(&format!("{KEY}{CERT}").replace('\n', "\r\n")), format!("{KEY}{CERT}"));
        let legacy = concat!(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n",
            "AAAA\n-----END RSA PRIVATE KEY-----\n",
        );
        assert_eq!(normalize_pem(legacy), legacy);
        assert_eq!(normalize_pem("no pem here"), "");
    }
}
