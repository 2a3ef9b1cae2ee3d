//! SASL for the group connection (`wire.rs`), which librdkafka does not make: PLAIN (RFC 4616) and
//! SCRAM-SHA-256/512 (RFC 5802, 7677) client exchanges, as Kafka's `SaslAuthenticate` carries them, and
//! OAUTHBEARER's one message (its token comes from [`super::oauth`]). Written
//! here on RustCrypto's HMAC, SHA-2 and PBKDF2: the SCRAM client crates on crates.io are either MPL-licensed
//! (`sasl`) or a whole SASL framework (`rsasl`) for what is some 80 lines of RFC 5802.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The mechanisms the group connection speaks (Kafka's `sasl.mechanism` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(Mechanism::ScramSha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A user and password for a mechanism. The password is never printed.
#[derive(Clone)]
pub struct Credentials {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("mechanism", &self.mechanism).field("username", &self.username).finish()
    }
}

/// Why the exchange failed on the client's side (the broker's own refusals come back as Kafka errors).
#[derive(Debug, thiserror::Error)]
#[error("SASL {mechanism}: {message}")]
pub struct SaslError {
    pub mechanism: &'static str,
    pub message: String,
}

/// One client's side of an exchange: the first message, then a reply to each server message, until done.
pub enum Exchange {
    Plain {
        first: Vec<u8>,
    },
    Scram(Scram),
    /// The initial response with the token ([`super::oauth`]). A server message after it is an error report
    /// (RFC 7628 §3.2.2), answered with the single byte the RFC asks for, after which the broker fails the login.
    OAuthBearer {
        first: Vec<u8>,
    },
}

impl Exchange {
    /// `nonce`: the client nonce for SCRAM (printable, without commas).
    pub fn start(credentials: &Credentials, nonce: &str) -> Self {
        match credentials.mechanism {
            Mechanism::Plain => {
                // authzid (empty), authcid, password, NUL separated.
                let first = [b"\0", credentials.username.as_bytes(), b"\0", credentials.password.as_bytes()].concat();
                Exchange::Plain { first }
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => Exchange::Scram(Scram::new(credentials, nonce)),
        }
    }

    pub fn first_message(&self) -> Vec<u8> {
        match self {
            Exchange::Plain { first } | Exchange::OAuthBearer { first } => first.clone(),
            Exchange::Scram(s) => s.client_first().into_bytes(),
        }
    }

    /// The reply to the server's message, or `None` when the exchange is complete (the server's last message
    /// checked).
    pub fn reply(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        match self {
            Exchange::Plain { .. } => Ok(None),
            Exchange::OAuthBearer { .. } if server.is_empty() => Ok(None),
            Exchange::OAuthBearer { .. } => Ok(Some(vec![0x01])),
            Exchange::Scram(s) => s.reply(server),
        }
    }
}

#[derive(Clone, Copy)]
enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// RFC 5802's Hi(): PBKDF2 with this HMAC, one block.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
            Hash::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec(),
        }
    }
}

/// A SCRAM exchange (RFC 5802 without channel binding, as Kafka's clients run it).
pub struct Scram {
    hash: Hash,
    mechanism: &'static str,
    username: String,
    password: String,
    nonce: String,
    /// The server signature the last message must carry, once the proof is sent.
    expected_signature: Option<Vec<u8>>,
}

/// Kafka's SCRAM iteration floor (its Java client refuses fewer, which would make a captured proof cheap to
/// attack); a server asking far more is refused rather than obeyed.
const MIN_ITERATIONS: u32 = 4096;
const MAX_ITERATIONS: u32 = 1 << 20;

impl Scram {
    fn new(credentials: &Credentials, nonce: &str) -> Self {
        let hash = if credentials.mechanism == Mechanism::ScramSha512 { Hash::Sha512 } else { Hash::Sha256 };
        Scram {
            hash,
            mechanism: credentials.mechanism.name(),
            // saslname: ',' and '=' escaped.
            username: credentials.username.replace('=', "=3D").replace(',', "=2C"),
            password: credentials.password.clone(),
            nonce: nonce.to_string(),
            expected_signature: None,
        }
    }

    fn error(&self, message: impl Into<String>) -> SaslError {
        SaslError { mechanism: self.mechanism, message: message.into() }
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", self.username, self.nonce)
    }

    fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare())
    }

    fn reply(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        let text = std::str::from_utf8(server).map_err(|_| self.error("the server's message is not UTF-8"))?;
        let attribute = |name: char| text.split(',').find_map(|part| part.strip_prefix(name)?.strip_prefix('='));
        if let Some(expected) = self.expected_signature.take() {
            if let Some(error) = attribute('e') {
                return Err(self.error(format!("the server refused: {error}")));
            }
            let signature = attribute('v')
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                .ok_or_else(|| self.error("the server's final message has no signature"))?;
            if signature != expected {
                return Err(self.error("the server's signature does not match: it does not know this user's password"));
            }
            return Ok(None);
        }
        if let Some(error) = attribute('e') {
            return Err(self.error(format!("the server refused: {error}")));
        }
        let nonce = attribute('r').ok_or_else(|| self.error("the server's first message has no nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(self.error("the server's nonce does not extend the client's"));
        }
        let salt = attribute('s')
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .ok_or_else(|| self.error("the server's first message has no salt"))?;
        let iterations: u32 = attribute('i')
            .and_then(|i| i.parse().ok())
            .filter(|i| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(i))
            .ok_or_else(|| self.error("the server's first message has no usable iteration count"))?;
        let salted = self.hash.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = self.hash.hmac(&salted, b"Client Key");
        let stored_key = self.hash.digest(&client_key);
        // "biws" is base64 of "n,,": no channel binding.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare());
        let client_signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&client_signature).map(|(k, s)| k ^ s).collect();
        let server_key = self.hash.hmac(&salted, b"Server Key");
        self.expected_signature = Some(self.hash.hmac(&server_key, auth_message.as_bytes()));
        let proof = base64::engine::general_purpose::STANDARD.encode(proof);
        Ok(Some(format!("{without_proof},p={proof}").into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(mechanism: Mechanism, username: &str, password: &str) -> Credentials {
        Credentials { mechanism, username: username.into(), password: password.into() }
    }

    /// RFC 7677's SCRAM-SHA-256 example, message for message.
    #[test]
    fn scram_sha_256_follows_rfc_7677s_example() {
        let mut exchange = Exchange::start(&credentials(Mechanism::ScramSha256, "user", "pencil"), "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(exchange.first_message(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = exchange.reply(server_first).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(exchange.reply(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap().is_none());
    }

    /// RFC 5802's example run with SHA-512 on both sides: a server that computes the signature from the same
    /// salted password is accepted, one that does not is refused.
    #[test]
    fn scram_sha_512_checks_the_servers_signature() {
        let creds = credentials(Mechanism::ScramSha512, "user,a=b", "pencil");
        let mut exchange = Exchange::start(&creds, "fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(exchange.first_message(), b"n,,n=user=2Ca=3Db,r=fyko+d2lbbFgONRv9qkxdawL", "the user name escaped");
        let server_first = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
        let client_final = String::from_utf8(exchange.reply(server_first.as_bytes()).unwrap().unwrap()).unwrap();
        // What the server computes from its stored keys.
        let salted =
            Hash::Sha512.salted_password(b"pencil", &base64::engine::general_purpose::STANDARD.decode("QSXCR+Q6sek8bf92").unwrap(), 4096);
        let without_proof = client_final.rsplit_once(",p=").unwrap().0;
        let auth = format!("n=user=2Ca=3Db,r=fyko+d2lbbFgONRv9qkxdawL,{server_first},{without_proof}");
        let stored_key = Hash::Sha512.digest(&Hash::Sha512.hmac(&salted, b"Client Key"));
        let proof = base64::engine::general_purpose::STANDARD.decode(client_final.rsplit_once(",p=").unwrap().1).unwrap();
        let client_key: Vec<u8> = proof.iter().zip(Hash::Sha512.hmac(&stored_key, auth.as_bytes())).map(|(p, s)| p ^ s).collect();
        assert_eq!(Hash::Sha512.digest(&client_key), stored_key, "the proof proves the password");
        let signature = Hash::Sha512.hmac(&Hash::Sha512.hmac(&salted, b"Server Key"), auth.as_bytes());
        let mut forged = exchange_after_first(&creds, server_first);
        assert!(forged.reply(b"v=AAAA").is_err(), "a wrong server signature is refused");
        let v = format!("v={}", base64::engine::general_purpose::STANDARD.encode(signature));
        assert!(exchange.reply(v.as_bytes()).unwrap().is_none());
    }

    fn exchange_after_first(creds: &Credentials, server_first: &str) -> Exchange {
        let mut exchange = Exchange::start(creds, "fyko+d2lbbFgONRv9qkxdawL");
        exchange.reply(server_first.as_bytes()).unwrap();
        exchange
    }

    #[test]
    fn a_server_nonce_that_does_not_extend_the_clients_or_an_error_is_refused() {
        let creds = credentials(Mechanism::ScramSha256, "u", "p");
        let mut exchange = Exchange::start(&creds, "abc");
        assert!(exchange.reply(b"r=xyz123,s=QSXCR+Q6sek8bf92,i=4096").is_err());
        let mut exchange = Exchange::start(&creds, "abc");
        assert!(exchange.reply(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=1").is_err(), "fewer iterations than Kafka's floor");
        let mut exchange = Exchange::start(&creds, "abc");
        let refused = exchange.reply(b"e=unknown-user").err().unwrap();
        assert!(refused.to_string().contains("unknown-user"), "{refused}");
    }

    #[test]
    fn plain_sends_user_and_password_once() {
        let mut exchange = Exchange::start(&credentials(Mechanism::Plain, "alice", "s3cret"), "");
        assert_eq!(exchange.first_message(), b"\0alice\0s3cret");
        assert!(exchange.reply(b"").unwrap().is_none());
        assert!(!format!("{:?}", credentials(Mechanism::Plain, "alice", "s3cret")).contains("s3cret"));
    }
}
