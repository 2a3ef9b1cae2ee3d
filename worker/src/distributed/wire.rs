//! One connection to a Kafka broker for the group requests librdkafka cannot make (a group of protocol
//! type `connect`): request framing with the `kafka-protocol` crate's codecs, over TCP or TLS (rustls), with
//! SASL PLAIN, SCRAM or OAUTHBEARER ([`super::sasl`], [`super::oauth`]) when the worker's `security.protocol` asks for it, from the same
//! worker keys as its librdkafka clients ([`Security::from_worker`]).

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{RequestHeader, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::oauth::TokenSource;
use super::sasl::{Credentials, Exchange, Mechanism};
use crate::config::WorkerConfig;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot connect to {address}: {source}")]
    Connect { address: String, source: std::io::Error },
    #[error("connection to {address} failed: {source}")]
    Io { address: String, source: std::io::Error },
    #[error("no answer from {address} within {timeout:?}")]
    Timeout { address: String, timeout: Duration },
    #[error("cannot encode or decode a Kafka message: {0}")]
    Codec(String),
    #[error("answer to another request (correlation id {got}, expected {expected})")]
    Correlation { got: i32, expected: i32 },
    #[error("TLS handshake with {address} failed: {source}")]
    Tls { address: String, source: std::io::Error },
    #[error("SASL authentication with {address} failed: {message}")]
    Authentication { address: String, message: String },
}

/// How the group connection reaches brokers: TLS and SASL as the worker's `security.protocol`, `ssl.*` and
/// `sasl.*` keys say (the same keys its librdkafka clients use).
#[derive(Clone, Default)]
pub struct Security {
    tls: Option<tokio_rustls::TlsConnector>,
    sasl: Option<Sasl>,
}

/// How the group connection logs in: a user and password (PLAIN, SCRAM), or a token from an identity provider
/// (OAUTHBEARER).
#[derive(Clone, Debug)]
enum Sasl {
    Password(Credentials),
    OAuthBearer(Arc<TokenSource>),
}

/// What one connection logs in with: a user's credentials, or a token fetched before connecting (so a slow
/// identity provider does not hold a broker connection open).
enum Login<'a> {
    Password(&'a Credentials),
    Token(&'a TokenSource, String),
}

impl Login<'_> {
    fn mechanism_name(&self) -> &'static str {
        match self {
            Login::Password(credentials) => credentials.mechanism.name(),
            Login::Token(..) => "OAUTHBEARER",
        }
    }
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security").field("tls", &self.tls.is_some()).field("sasl", &self.sasl).finish()
    }
}

/// SaslHandshake v1: the exchange then goes in SaslAuthenticate requests.
const SASL_HANDSHAKE_VERSION: i16 = 1;
const SASL_AUTHENTICATE_VERSION: i16 = 1;

impl Security {
    /// From the worker's top-level security keys (Kafka Connect's group member uses those, not `producer.`,
    /// `consumer.` or `admin.` ones). What the group connection cannot do is an error naming the key.
    pub fn from_worker(worker: &WorkerConfig) -> Result<Self, String> {
        // The translation looks at the security keys only; prefixed ones (`producer.` ...) are not among them.
        let translated = crate::kafka::security::translate(&worker.raw).map_err(|e| format!("Kafka security settings: {e}"))?;
        let (tls, sasl) = translated.layers();
        let mut security = Security::default();
        if sasl {
            let name = translated.get("sasl.mechanisms").unwrap_or("GSSAPI");
            if name.trim().eq_ignore_ascii_case("OAUTHBEARER") {
                security.sasl = Some(Sasl::OAuthBearer(Arc::new(TokenSource::from_translated(&translated)?)));
            } else {
                let mechanism = Mechanism::parse(name).ok_or_else(|| {
                    format!("sasl.mechanism={name}: distributed mode's group connection speaks PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER")
                })?;
                let username = translated.get("sasl.username").ok_or("sasl.jaas.config: no username for the group connection")?;
                let password = translated.get("sasl.password").ok_or("sasl.jaas.config: no password for the group connection")?;
                let credentials = Credentials { mechanism, username: username.to_string(), password: password.to_string() };
                security.sasl = Some(Sasl::Password(credentials));
            }
        }
        if tls {
            if translated.get("enable.ssl.certificate.verification").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
                return Err("enable.ssl.certificate.verification=false is not supported by distributed mode's group connection".into());
            }
            let check_host = translated.get("ssl.endpoint.identification.algorithm") != Some("none");
            let (roots, identity) = crate::rest::tls::kafka_client_material(&worker.raw).map_err(|e| format!("Kafka TLS settings: {e}"))?;
            let roots = match roots {
                Some(roots) => roots,
                None => {
                    let mut roots = rustls::RootCertStore::empty();
                    let native = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(native.certs);
                    roots
                }
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("Kafka TLS settings: the truststore: {e}"))?;
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("Kafka TLS settings: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(BrokerVerifier { inner: verifier, check_host }));
            let config = match identity {
                Some((chain, key)) => {
                    builder.with_client_auth_cert(chain, key).map_err(|e| format!("Kafka TLS settings: the keystore: {e}"))?
                }
                None => builder.with_no_client_auth(),
            };
            security.tls = Some(tokio_rustls::TlsConnector::from(Arc::new(config)));
        }
        Ok(security)
    }
}

/// The brokers' certificates checked against the truststore, and their host names unless
/// `ssl.endpoint.identification.algorithm` is empty (Kafka's way of turning that check off).
#[derive(Debug)]
struct BrokerVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    check_host: bool,
}

impl ServerCertVerifier for BrokerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. },
            )) if !self.check_host => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A byte stream to a broker: TCP, or TLS over it.
trait BrokerStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> BrokerStream for T {}

pub struct Connection {
    address: String,
    stream: Box<dyn BrokerStream>,
    next_correlation: i32,
    client_id: StrBytes,
}

/// Responses larger than this are a protocol error, not an allocation.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

impl Connection {
    /// Connect, with TLS and SASL as `security` says, each step within `timeout`.
    pub async fn open(address: &str, client_id: &str, security: &Security, timeout: Duration) -> Result<Self, WireError> {
        let login = match &security.sasl {
            None => None,
            Some(Sasl::Password(credentials)) => Some(Login::Password(credentials)),
            Some(Sasl::OAuthBearer(source)) => {
                let token = source.token().await.map_err(|message| WireError::Authentication { address: address.to_string(), message })?;
                Some(Login::Token(source, token))
            }
        };
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| WireError::Timeout { address: address.into(), timeout })?
            .map_err(|source| WireError::Connect { address: address.into(), source })?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn BrokerStream> = match &security.tls {
            None => Box::new(tcp),
            Some(connector) => {
                let host = address.rsplit_once(':').map_or(address, |(host, _)| host).trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(host.to_string()).map_err(|e| WireError::Tls {
                    address: address.into(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
                })?;
                let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| WireError::Timeout { address: address.into(), timeout })?
                    .map_err(|source| WireError::Tls { address: address.into(), source })?;
                Box::new(tls)
            }
        };
        let mut connection =
            Connection { address: address.into(), stream, next_correlation: 1, client_id: StrBytes::from_string(client_id.into()) };
        if let Some(login) = login {
            connection.authenticate(login, timeout).await?;
        }
        Ok(connection)
    }

    /// SaslHandshake, then the mechanism's messages in SaslAuthenticate requests until it is done.
    async fn authenticate(&mut self, login: Login<'_>, timeout: Duration) -> Result<(), WireError> {
        let refused = |address: &str, message: String| WireError::Authentication { address: address.to_string(), message };
        let name = login.mechanism_name();
        let handshake = self
            .call(SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(name)), SASL_HANDSHAKE_VERSION, timeout)
            .await?;
        if handshake.error_code != 0 {
            let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(refused(
                &self.address,
                format!("the broker does not take {name} (error {}; it offers {offered:?})", handshake.error_code),
            ));
        }
        let (mut exchange, who) = match &login {
            Login::Password(credentials) => {
                let mut nonce = [0u8; 18];
                rustls::crypto::ring::default_provider()
                    .secure_random
                    .fill(&mut nonce)
                    .map_err(|_| refused(&self.address, "no system randomness for the SCRAM nonce".into()))?;
                let nonce = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, nonce);
                (Exchange::start(credentials, &nonce), credentials.username.clone())
            }
            Login::Token(source, token) => {
                (Exchange::OAuthBearer { first: source.initial_response(token) }, "the identity provider's token".to_string())
            }
        };
        let mut message = Some(exchange.first_message());
        while let Some(bytes) = message.take() {
            let request = SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from(bytes));
            let response = self.call(request, SASL_AUTHENTICATE_VERSION, timeout).await?;
            if response.error_code != 0 {
                let why = response.error_message.map(|m| m.to_string()).unwrap_or_default();
                if let Login::Token(source, _) = &login {
                    // A token the broker refused (revoked, say) is not offered again: the next login asks for another.
                    source.forget().await;
                }
                return Err(refused(&self.address, format!("{name} as {who}: error {} {why}", response.error_code)));
            }
            // SCRAM's key derivation runs thousands of HMAC rounds: off the async threads.
            let server = response.auth_bytes;
            let (back, reply) = tokio::task::spawn_blocking(move || {
                let reply = exchange.reply(&server);
                (exchange, reply)
            })
            .await
            .map_err(|e| refused(&self.address, format!("the SASL exchange stopped: {e}")))?;
            exchange = back;
            message = reply.map_err(|e| refused(&self.address, e.to_string()))?;
        }
        Ok(())
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Send `request` at `version` and wait up to `timeout` for its response.
    pub async fn call<R: Request>(&mut self, request: R, version: i16, timeout: Duration) -> Result<R::Response, WireError> {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(self.client_id.clone()));
        let mut body = BytesMut::new();
        body.put_i32(0); // size, filled in below
        header.encode(&mut body, R::header_version(version)).map_err(|e| WireError::Codec(e.to_string()))?;
        request.encode(&mut body, version).map_err(|e| WireError::Codec(e.to_string()))?;
        let size = (body.len() - 4) as i32;
        body[..4].copy_from_slice(&size.to_be_bytes());
        let address = self.address.clone();
        let exchange = async {
            self.stream.write_all(&body).await?;
            // TLS may hold encrypted bytes back until flushed.
            self.stream.flush().await?;
            let size = self.stream.read_i32().await?;
            if size < 4 || size as usize > MAX_RESPONSE {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("response size {size}")));
            }
            let mut response = vec![0u8; size as usize];
            self.stream.read_exact(&mut response).await?;
            Ok(bytes::Bytes::from(response))
        };
        let mut response = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| WireError::Timeout { address: address.clone(), timeout })?
            .map_err(|source| WireError::Io { address, source })?;
        let got = response.get_i32();
        if got != correlation {
            return Err(WireError::Correlation { got, expected: correlation });
        }
        if <R::Response as HeaderVersion>::header_version(version) >= 1 {
            // Flexible response header: tagged fields after the correlation id.
            skip_tagged_fields(&mut response).map_err(WireError::Codec)?;
        }
        R::Response::decode(&mut response, version).map_err(|e| WireError::Codec(e.to_string()))
    }
}

/// Skip a tagged-field section (unsigned varint count, then tag, size, bytes).
fn skip_tagged_fields(buf: &mut bytes::Bytes) -> Result<(), String> {
    let count = read_uvarint(buf)?;
    for _ in 0..count {
        let _tag = read_uvarint(buf)?;
        let size = read_uvarint(buf)? as usize;
        if buf.remaining() < size {
            return Err("truncated tagged field".into());
        }
        buf.advance(size);
    }
    Ok(())
}

fn read_uvarint(buf: &mut bytes::Bytes) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            return Err("truncated varint".into());
        }
        let b = buf.get_u8();
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}
