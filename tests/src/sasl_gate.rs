//! A SASL OAUTHBEARER or PLAIN login in front of an open test broker. No broker here takes either (nisshi and
//! tansu speak SCRAM only, and create SCRAM users only), and what the tests are about is the worker's side: its
//! clients present a token from an OAuth identity provider, or Confluent Cloud's API key and secret, when they
//! connect. The gate answers Kafka's `SaslHandshake` and `SaslAuthenticate` itself, checks what was presented
//! with the test's rule, and then relays the connection to the broker, which advertises the gate's address (or
//! a TLS terminator's in front of it) so every connection comes through it. `ApiVersions`
//! before the login goes to the broker, so the client sees the broker's versions; any other request before a
//! login closes the connection, as a broker requiring SASL would.

use crate::tcp_server::TcpServer;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const API_VERSIONS: i16 = 18;
const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// What a client presented in its `SaslAuthenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// OAUTHBEARER's bearer token.
    Token(String),
    /// PLAIN's user and password.
    Password { user: String, password: String },
}

/// One `SaslAuthenticate` the gate answered.
#[derive(Debug, Clone)]
pub struct Login {
    /// `None` when the message was not one of the gate's mechanism.
    pub credential: Option<Credential>,
    pub accepted: bool,
}

/// The mechanisms the gate speaks, by Kafka's names.
pub const OAUTHBEARER: &str = "OAUTHBEARER";
pub const PLAIN: &str = "PLAIN";

/// See the [module docs](self).
pub struct SaslGate {
    pub port: u16,
    logins: Arc<Mutex<Vec<Login>>>,
    _server: TcpServer,
}

type Rule = Arc<dyn Fn(&Credential) -> bool + Send + Sync>;

impl SaslGate {
    /// Listen on `port` now (taken from the harness's registry, so the broker can be told to advertise it
    /// before it starts); take `mechanism` ([`OAUTHBEARER`] or [`PLAIN`]) and relay the logins that `accept`
    /// lets through to `target` (`host:port`).
    pub fn start(port: u16, target: &str, mechanism: &'static str, accept: impl Fn(&Credential) -> bool + Send + Sync + 'static) -> Self {
        assert!([OAUTHBEARER, PLAIN].contains(&mechanism), "the gate speaks OAUTHBEARER and PLAIN");
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let logins = Arc::new(Mutex::new(Vec::new()));
        let (target, accept, seen): (String, Rule, _) = (target.to_string(), Arc::new(accept), logins.clone());
        let server = TcpServer::start(listener, move |client| {
            let (target, accept, seen) = (target.clone(), accept.clone(), seen.clone());
            async move {
                // A refused login or a broken frame just ends the connection.
                let _ = serve(client, &target, mechanism, &*accept, &seen).await;
            }
        });
        SaslGate { port, logins, _server: server }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn logins(&self) -> Vec<Login> {
        self.logins.lock().unwrap().clone()
    }
}

/// One client connection: requests answered here until a login is accepted, then a plain relay.
async fn serve(
    mut client: TcpStream,
    target: &str,
    mechanism: &str,
    accept: &(dyn Fn(&Credential) -> bool + Send + Sync),
    logins: &Mutex<Vec<Login>>,
) -> std::io::Result<()> {
    let mut broker = TcpStream::connect(target).await?;
    loop {
        let request = read_frame(&mut client).await?;
        let header = RequestHeader::parse(&request).ok_or_else(|| bad("a request header"))?;
        match header.api_key {
            API_VERSIONS => {
                write_frame(&mut broker, &request).await?;
                let response = read_frame(&mut broker).await?;
                write_frame(&mut client, &response).await?;
            }
            SASL_HANDSHAKE => {
                let asked = Reader::new(&request[header.body..]).string().unwrap_or_default();
                let error = if asked == mechanism { 0 } else { UNSUPPORTED_SASL_MECHANISM };
                let mut body = header.response_start();
                body.extend_from_slice(&error.to_be_bytes());
                body.extend_from_slice(&1i32.to_be_bytes());
                put_string(&mut body, mechanism);
                write_frame(&mut client, &body).await?;
                if error != 0 {
                    return Ok(());
                }
            }
            SASL_AUTHENTICATE => {
                let mut reader = Reader::new(&request[header.body..]);
                let message = if header.flexible() { reader.compact_bytes() } else { reader.bytes() }.ok_or_else(|| bad("auth bytes"))?;
                let credential = if mechanism == PLAIN { plain_password(message) } else { bearer_token(message).map(Credential::Token) };
                let accepted = credential.as_ref().is_some_and(accept);
                logins.lock().unwrap().push(Login { credential, accepted });
                let error = if accepted { 0 } else { SASL_AUTHENTICATION_FAILED };
                let message = (!accepted).then_some("the credentials were refused");
                let mut body = header.response_start();
                body.extend_from_slice(&error.to_be_bytes());
                if header.flexible() {
                    match message {
                        None => body.push(0),
                        Some(m) => {
                            body.push(m.len() as u8 + 1);
                            body.extend_from_slice(m.as_bytes());
                        }
                    }
                    body.push(1); // Empty auth bytes.
                } else {
                    match message {
                        None => body.extend_from_slice(&(-1i16).to_be_bytes()),
                        Some(m) => put_string(&mut body, m),
                    }
                    body.extend_from_slice(&0i32.to_be_bytes());
                }
                if header.api_version >= 1 {
                    body.extend_from_slice(&0i64.to_be_bytes()); // No session lifetime.
                }
                if header.flexible() {
                    body.push(0); // No tagged fields.
                }
                write_frame(&mut client, &body).await?;
                if !accepted {
                    return Ok(());
                }
                tokio::io::copy_bidirectional(&mut client, &mut broker).await?;
                return Ok(());
            }
            // A broker that requires SASL answers nothing else before a login.
            _ => return Ok(()),
        }
    }
}

/// The user and password of a client's PLAIN message (RFC 4616: authzid, authcid and password, NUL separated).
fn plain_password(message: &[u8]) -> Option<Credential> {
    let text = std::str::from_utf8(message).ok()?;
    let mut parts = text.split('\0');
    let (_authzid, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    Some(Credential::Password { user: user.to_string(), password: password.to_string() })
}

/// The token of a client's OAUTHBEARER initial response (RFC 7628: `n,,\x01auth=Bearer <token>\x01...\x01\x01`).
fn bearer_token(message: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(message).ok()?;
    text.split('\x01').find_map(|part| part.strip_prefix("auth=Bearer ")).map(str::to_string)
}

struct RequestHeader {
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    /// Where the request body starts.
    body: usize,
}

impl RequestHeader {
    fn parse(frame: &[u8]) -> Option<Self> {
        let mut reader = Reader::new(frame);
        let api_key = reader.i16()?;
        let api_version = reader.i16()?;
        let correlation_id = reader.i32()?;
        let client_id = reader.i16()?;
        reader.skip(usize::try_from(client_id).unwrap_or(0))?;
        let mut header = RequestHeader { api_key, api_version, correlation_id, body: 0 };
        if header.flexible() {
            reader.skip_tagged_fields()?;
        }
        header.body = reader.at;
        Some(header)
    }

    /// SaslAuthenticate v2 is the only flexible version the gate answers (SaslHandshake has none).
    fn flexible(&self) -> bool {
        self.api_key == SASL_AUTHENTICATE && self.api_version >= 2
    }

    /// The response header: the correlation id, and an empty tagged-field section for a flexible version.
    fn response_start(&self) -> Vec<u8> {
        let mut out = self.correlation_id.to_be_bytes().to_vec();
        if self.flexible() {
            out.push(0);
        }
        out
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(drop)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn uvarint(&mut self) -> Option<usize> {
        let mut value = 0usize;
        for shift in (0..35).step_by(7) {
            let byte = *self.take(1)?.first()?;
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.i32()?).ok()?;
        self.take(len)
    }

    fn compact_bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.uvarint()?.checked_sub(1)?;
        self.take(len)
    }

    fn skip_tagged_fields(&mut self) -> Option<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let len = self.uvarint()?;
            self.skip(len)?;
        }
        Some(())
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("the gate could not read {what}"))
}

async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = stream.read_i32().await?;
    let mut frame = vec![0; usize::try_from(len).map_err(|_| bad("a frame length"))?];
    stream.read_exact(&mut frame).await?;
    Ok(frame)
}

async fn write_frame(stream: &mut TcpStream, frame: &[u8]) -> std::io::Result<()> {
    stream.write_i32(frame.len() as i32).await?;
    stream.write_all(frame).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_an_oauthbearer_initial_response() {
        assert_eq!(bearer_token(b"n,,\x01auth=Bearer abc.def.ghi\x01\x01").as_deref(), Some("abc.def.ghi"));
        assert_eq!(bearer_token(b"n,a=user,\x01host=h\x01auth=Bearer t\x01ext=1\x01\x01").as_deref(), Some("t"));
        assert_eq!(bearer_token(b"n,,\x01auth=Basic xyz\x01\x01"), None);
    }

    #[test]
    fn user_and_password_are_read_from_a_plain_message() {
        let expected = Credential::Password { user: "KEY".into(), password: "SECRET".into() };
        assert_eq!(plain_password(b"\0KEY\0SECRET"), Some(expected));
        assert_eq!(plain_password(b"KEY"), None);
    }

    #[test]
    fn a_flexible_request_header_is_read_past_its_tagged_fields() {
        let mut frame = Vec::new();
        frame.extend_from_slice(&SASL_AUTHENTICATE.to_be_bytes());
        frame.extend_from_slice(&2i16.to_be_bytes());
        frame.extend_from_slice(&7i32.to_be_bytes());
        put_string(&mut frame, "rdkafka");
        frame.extend_from_slice(&[1, 0, 2, 9, 9]); // One tagged field, tag 0, two bytes.
        frame.extend_from_slice(&[4, b'a', b'b', b'c']); // Compact bytes "abc".
        let header = RequestHeader::parse(&frame).unwrap();
        assert_eq!((header.api_key, header.api_version, header.correlation_id), (SASL_AUTHENTICATE, 2, 7));
        assert_eq!(Reader::new(&frame[header.body..]).compact_bytes(), Some(&b"abc"[..]));
    }
}
