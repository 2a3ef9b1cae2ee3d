//! Secured Kafka clusters (issue #25): a worker configured the way Kafka Connect users configure one for
//! Confluent Cloud or a SCRAM cluster (top-level and `producer.`/`consumer.` keys, `sasl.jaas.config` with the
//! password from a config provider, PEM and PKCS12 stores) moves records through a file source and sink.
//!
//! The broker is nisshi (tansu's successor) with `--authentication` (SASL SCRAM), its users on SQLite so they
//! survive the restart that turns authentication on. It serves no TLS here, so for SASL_SSL and mutual TLS a
//! TLS terminator of the harness (`tls_proxy`) sits in front of it and the broker advertises the proxy. No broker
//! here takes OAUTHBEARER or PLAIN: for those the broker runs open behind the harness's login gate (`sasl_gate`),
//! which checks the token the worker's clients got from a local identity provider, or the user and password.

use base64::Engine as _;
use connect_e2e::http_target::{json_answer, HttpTarget};
use connect_e2e::sasl_gate::{Credential, SaslGate, OAUTHBEARER, PLAIN};
use connect_e2e::secured_broker::SecuredBroker;
use connect_e2e::tls_proxy::TlsProxy;
use connect_e2e::*;
mod pki;

use pki::{ca, leaf};
use rcgen::ExtendedKeyUsagePurpose;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const OAUTH: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";
const OAUTH_HANDLER: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler";

/// A worker's file pipeline on `bootstrap` with `security` keys; returns once `n` lines came out, or panics
/// with the worker's log.
fn pipeline_moves_lines(dir: &Path, bootstrap: &str, security: &[(&str, &str)], n: usize) -> Worker {
    let input = dir.join("in.txt");
    let output = dir.join("out.txt");
    std::fs::write(&input, numbered_lines(0..n, 30)).unwrap();
    let _ = std::fs::remove_file(&output);
    let topic = unique("secured");
    let mut extra = vec![("bootstrap.servers", bootstrap)];
    extra.extend_from_slice(security);
    let mut setup = WorkerSetup::new(dir, &extra);
    setup.connector("secured-source", json!({"connector.class": "FileStreamSource", "file": input, "topic": topic}));
    setup.connector("secured-sink", json!({"connector.class": "FileStreamSink", "file": output, "topics": topic}));
    let worker = setup.start();
    wait_for_or_explain(
        "every line through the secured cluster",
        Duration::from_secs(90),
        || (line_count(&output) >= n).then_some(()),
        || tail(&worker.log_text(), 40),
    );
    assert_eq!(read_lines(&output), read_lines(&input), "the same lines, in order");
    worker
}

/// `/health` of a worker that cannot log in: 500, and the message says why (not a timeout).
fn refused_with(worker: &Worker, words: &[&str]) -> String {
    wait_for_or_explain(
        "an unhealthy worker naming the reason",
        Duration::from_secs(60),
        || {
            let (code, body) = worker.get("/health");
            let message = body["message"].as_str().unwrap_or("").to_ascii_lowercase();
            (code == 500 && words.iter().any(|w| message.contains(w))).then_some(message)
        },
        || format!("{:?}\n{}", worker.get("/health"), tail(&worker.log_text(), 30)),
    )
}

#[test]
fn scram_with_a_jaas_line_from_a_config_provider_and_a_wrong_password_named() {
    let dir = tempfile::tempdir().unwrap();
    let broker = SecuredBroker::start(dir.path(), &[("alice", "alice-s3cret", "scram512")]);
    let secrets = dir.path().join("kafka-secrets.properties");
    std::fs::write(&secrets, "password=alice-s3cret\nwrong=not-her-password\n").unwrap();
    let jaas = |key: &str| format!(r#"{SCRAM} required username="alice" password="${{file:{}:{key}}}";"#, secrets.display());
    let (right, wrong) = (jaas("password"), jaas("wrong"));
    let allowed = dir.path().display().to_string();
    // As Confluent Cloud's examples write it: top level, and again for the producer and the consumer.
    let security = |jaas: &str| -> Vec<(String, String)> {
        let mut keys = vec![
            ("config.providers".to_string(), "file".to_string()),
            ("config.providers.file.class".into(), "org.apache.kafka.common.config.provider.FileConfigProvider".into()),
            ("config.providers.file.param.allowed.paths".into(), allowed.clone()),
        ];
        for prefix in ["", "producer.", "consumer."] {
            keys.push((format!("{prefix}security.protocol"), "SASL_PLAINTEXT".into()));
            keys.push((format!("{prefix}sasl.mechanism"), "SCRAM-SHA-512".into()));
            keys.push((format!("{prefix}sasl.jaas.config"), jaas.to_string()));
        }
        // Java-only: listed once at start as ignored, never handed to librdkafka.
        keys.push(("sasl.login.refresh.window.factor".into(), "0.8".into()));
        keys
    };
    let keys = security(&right);
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut worker = pipeline_moves_lines(dir.path(), &broker.bootstrap(), &keys, 2000);
    let log = worker.log_text();
    assert!(log.contains("sasl.login.refresh.window.factor") && log.contains("ignored"), "{}", tail(&log, 40));
    assert_eq!(worker.stop(), Some(0));
    assert!(!worker.log_text().contains("alice-s3cret"), "the password never reaches the log");

    let keys = security(&wrong);
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut extra = vec![("bootstrap.servers", broker.bootstrap())];
    extra.extend(keys.iter().map(|(k, v)| (*k, v.to_string())));
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let wrong_dir = dir.path().join("wrong");
    std::fs::create_dir_all(&wrong_dir).unwrap();
    let refused = WorkerSetup::new(&wrong_dir, &extra).start();
    let message = refused_with(&refused, &["authentication", "sasl"]);
    assert!(!message.contains("not-her-password"), "{message}");
}

/// A SCRAM-SHA-256 broker with `user` behind the TLS terminator, which serves `server`'s certificate and asks
/// for a client certificate signed by `ca_cert`; the bootstrap address is the terminator's.
fn broker_behind_tls(
    dir: &Path,
    ca_cert: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    server: &rcgen::Certificate,
    server_key: &rcgen::KeyPair,
    (user, password): (&str, &str),
) -> (TlsProxy, SecuredBroker, String) {
    let broker_port = free_port();
    let proxy = TlsProxy::start(
        &format!("127.0.0.1:{broker_port}"),
        &format!("{}{}", server.pem(), ca_cert.pem()),
        &server_key.serialize_pem(),
        Some(&ca_cert.pem()),
    );
    let broker = SecuredBroker::start_on(dir, broker_port, &[(user, password, "scram256")], Some(proxy.port));
    let bootstrap = format!("127.0.0.1:{}", proxy.port);
    (proxy, broker, bootstrap)
}

/// Confluent Cloud's way in, as the car-park pipeline's worker config has it: SASL_SSL with PLAIN, the API key
/// and secret in a `PlainLoginModule` JAAS line at the top level and again under `producer.`/`consumer.`, and
/// a PEM truststore at the top level only (so it must reach every client). No broker here takes PLAIN, so the
/// login gate checks the key and secret behind the TLS terminator, host names checked. A wrong secret is named
/// by `/health` as an authentication failure, and no secret reaches the log.
#[test]
fn confluent_cloud_style_sasl_ssl_plain_with_a_pem_truststore() {
    let dir = tempfile::tempdir().unwrap();
    let ca_cert = ca("connect-rs Kafka test CA");
    let (server, server_key) = leaf(&ca_cert, &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
    let (gate_port, broker_port) = (free_port(), free_port());
    let gate = SaslGate::start(gate_port, &format!("127.0.0.1:{broker_port}"), PLAIN, |presented| {
        *presented == Credential::Password { user: "API-KEY".into(), password: "api-s3cret".into() }
    });
    let chain = format!("{}{}", server.pem(), ca_cert.pem());
    let proxy = TlsProxy::start(&format!("127.0.0.1:{gate_port}"), &chain, &server_key.serialize_pem(), None);
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir_all(&broker_dir).unwrap();
    let _broker = SecuredBroker::start_open_behind(&broker_dir, broker_port, proxy.port);
    let bootstrap = format!("127.0.0.1:{}", proxy.port);

    let keys = |password: &str| -> Vec<(String, String)> {
        let jaas = format!(r#"{PLAIN_MODULE} required username="API-KEY" password="{password}";"#);
        let mut keys = vec![
            ("ssl.truststore.location".to_string(), ca_pem.display().to_string()),
            ("ssl.truststore.type".to_string(), "PEM".to_string()),
            ("ssl.endpoint.identification.algorithm".to_string(), "https".to_string()),
        ];
        for prefix in ["", "producer.", "consumer."] {
            keys.push((format!("{prefix}security.protocol"), "SASL_SSL".to_string()));
            keys.push((format!("{prefix}sasl.mechanism"), "PLAIN".to_string()));
            keys.push((format!("{prefix}sasl.jaas.config"), jaas.clone()));
        }
        keys
    };
    let right = keys("api-s3cret");
    let right: Vec<(&str, &str)> = right.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let pipeline_dir = dir.path().join("pipeline");
    std::fs::create_dir_all(&pipeline_dir).unwrap();
    let mut worker = pipeline_moves_lines(&pipeline_dir, &bootstrap, &right, 1000);
    assert_eq!(worker.stop(), Some(0));
    let logins = gate.logins();
    assert!(!logins.is_empty() && logins.iter().all(|l| l.accepted), "{logins:?}");
    let log = worker.log_text();
    assert!(!log.contains("api-s3cret"), "{}", tail(&log, 20));

    let wrong = keys("not-the-secret");
    let mut extra = vec![("bootstrap.servers", bootstrap.as_str())];
    extra.extend(wrong.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let refused_dir = dir.path().join("refused");
    std::fs::create_dir_all(&refused_dir).unwrap();
    let refused = WorkerSetup::new(&refused_dir, &extra).start();
    let message = refused_with(&refused, &["authentication"]);
    assert!(!message.contains("not-the-secret") && !refused.log_text().contains("not-the-secret"), "{message}");
    assert!(gate.logins().iter().any(|l| !l.accepted), "the gate refused the wrong secret");
}

/// SASL_SSL with client certificates: PKCS12 truststore and keystore in one worker, PEM stores in another,
/// host names checked (the broker's certificate names 127.0.0.1); without a client certificate the TLS
/// handshake is refused and `/health` says so.
#[test]
fn sasl_ssl_with_mutual_tls_from_pkcs12_and_pem_stores() {
    let dir = tempfile::tempdir().unwrap();
    let ca_cert = ca("connect-rs Kafka test CA");
    let (server, server_key) = leaf(&ca_cert, &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let (client, client_key) = leaf(&ca_cert, &["connect-worker"], ExtendedKeyUsagePurpose::ClientAuth);
    let write = |name: &str, bytes: &[u8]| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let ca_pem = write("ca.pem", ca_cert.pem().as_bytes());
    let mut trust = p12_keystore::KeyStore::new();
    trust.add_entry("ca", p12_keystore::KeyStoreEntry::Certificate(p12_keystore::Certificate::from_der(ca_cert.der()).unwrap()));
    let truststore_p12 = write("truststore.p12", &trust.writer("changeit").write().unwrap());
    let mut keys = p12_keystore::KeyStore::new();
    let chain = p12_keystore::PrivateKeyChain::new(
        "worker",
        p12_keystore::PrivateKey::from_der(&client_key.serialize_der()).unwrap(),
        [p12_keystore::Certificate::from_der(client.der()).unwrap(), p12_keystore::Certificate::from_der(ca_cert.der()).unwrap()],
    );
    keys.add_entry("worker", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    let keystore_p12 = write("keystore.p12", &keys.writer("changeit").write().unwrap());
    let keystore_pem = write("keystore.pem", format!("{}{}", client_key.serialize_pem(), client.pem()).as_bytes());

    let (_proxy, _broker, bootstrap) = broker_behind_tls(dir.path(), &ca_cert, &server, &server_key, ("bob", "bob-s3cret"));
    let jaas = format!(r#"{SCRAM} required username="bob" password="bob-s3cret";"#);
    let sasl = [("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-256"), ("sasl.jaas.config", jaas.as_str())];

    let p12_dir = dir.path().join("p12");
    std::fs::create_dir_all(&p12_dir).unwrap();
    let mut keys = sasl.to_vec();
    keys.extend([
        ("ssl.truststore.location", truststore_p12.to_str().unwrap()),
        ("ssl.truststore.type", "PKCS12"),
        ("ssl.truststore.password", "changeit"),
        ("ssl.keystore.location", keystore_p12.to_str().unwrap()),
        ("ssl.keystore.type", "PKCS12"),
        ("ssl.keystore.password", "changeit"),
        ("ssl.key.password", "changeit"),
    ]);
    let mut worker = pipeline_moves_lines(&p12_dir, &bootstrap, &keys, 1000);
    assert_eq!(worker.stop(), Some(0));

    let pem_dir = dir.path().join("pem");
    std::fs::create_dir_all(&pem_dir).unwrap();
    let mut keys = sasl.to_vec();
    keys.extend([
        ("ssl.truststore.location", ca_pem.to_str().unwrap()),
        ("ssl.truststore.type", "PEM"),
        ("ssl.keystore.location", keystore_pem.to_str().unwrap()),
        ("ssl.keystore.type", "PEM"),
        ("ssl.endpoint.identification.algorithm", "https"),
    ]);
    let mut worker = pipeline_moves_lines(&pem_dir, &bootstrap, &keys, 1000);
    assert_eq!(worker.stop(), Some(0));
    // A literal password (not from a config provider, whose values the log hides anyway) is never logged either.
    for log in [std::fs::read_to_string(p12_dir.join("worker.log")).unwrap(), worker.log_text()] {
        assert!(!log.contains("bob-s3cret"), "{}", tail(&log, 20));
    }

    // No client certificate: the proxy, like a broker with ssl.client.auth=required, ends the handshake.
    let bare_dir = dir.path().join("bare");
    std::fs::create_dir_all(&bare_dir).unwrap();
    let mut extra = vec![("bootstrap.servers", bootstrap.as_str())];
    extra.extend(sasl);
    extra.extend([("ssl.truststore.location", ca_pem.to_str().unwrap()), ("ssl.truststore.type", "PEM")]);
    let refused = WorkerSetup::new(&bare_dir, &extra).start();
    refused_with(&refused, &["ssl", "handshake", "certificate"]);
}

/// A JWT as an identity provider issues one. librdkafka reads its `sub` and `exp` to know whose token it is and
/// when to fetch the next; the signature is the broker's to check (here the gate compares the whole token).
fn jwt(subject: &str) -> String {
    let b64 = |json: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    format!(
        "{}.{}.{}",
        b64(json!({"alg": "RS256", "typ": "JWT"})),
        b64(json!({"sub": subject, "iat": now, "exp": now + 3600, "scope": "kafka"})),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"signature")
    )
}

/// An identity provider that issues `token` to the client `connect-worker` with the secret `idp-s3cret` (and
/// answers 401 to other credentials), an open broker, and the login gate in front of it that takes `token`
/// only. Drop order: the gate before the broker.
struct OAuthCluster {
    idp: HttpTarget,
    gate: SaslGate,
    _broker: SecuredBroker,
    token: String,
}

impl OAuthCluster {
    fn start(dir: &Path) -> Self {
        let token = jwt("connect-worker");
        let issued = json!({"access_token": token, "token_type": "bearer", "expires_in": 3600}).to_string();
        let basic = basic_auth("connect-worker", "idp-s3cret");
        let idp =
            HttpTarget::with_header_responder(move |_, headers, _| match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                Some(given) if given == basic => json_answer(200, &issued),
                _ => json_answer(401, r#"{"error":"invalid_client"}"#),
            });
        // The gate listens before the broker starts advertising it.
        let gate_port = free_port();
        let broker_port = free_port();
        let expected = token.clone();
        let gate = SaslGate::start(gate_port, &format!("127.0.0.1:{broker_port}"), OAUTHBEARER, move |presented| {
            *presented == Credential::Token(expected.clone())
        });
        let broker_dir = dir.join("broker");
        std::fs::create_dir_all(&broker_dir).unwrap();
        let broker = SecuredBroker::start_open_behind(&broker_dir, broker_port, gate_port);
        OAuthCluster { idp, gate, _broker: broker, token }
    }

    /// Kafka's keys for OAUTHBEARER with client credentials, as Confluent's and Kafka's docs write them.
    fn keys(&self, secret: &str) -> Vec<(&'static str, String)> {
        vec![
            ("security.protocol", "SASL_PLAINTEXT".to_string()),
            ("sasl.mechanism", "OAUTHBEARER".to_string()),
            ("sasl.jaas.config", format!(r#"{OAUTH} required clientId="connect-worker" clientSecret="{secret}" scope="kafka";"#)),
            ("sasl.login.callback.handler.class", OAUTH_HANDLER.to_string()),
            ("sasl.oauthbearer.token.endpoint.url", self.idp.url("/oauth2/token")),
        ]
    }

    /// Every token request was a client-credentials POST with the right secret, and every login used the token.
    fn check_requests_and_logins(&self) {
        let calls = self.idp.calls();
        assert!(!calls.is_empty(), "the worker asked the identity provider for tokens");
        for call in &calls {
            assert_eq!((call.method.as_str(), call.path.as_str(), call.status), ("POST", "/oauth2/token", 200), "{call:?}");
            assert!(call.body.contains("grant_type=client_credentials") && call.body.contains("scope=kafka"), "{}", call.body);
        }
        let logins = self.gate.logins();
        let token = Some(Credential::Token(self.token.clone()));
        assert!(!logins.is_empty() && logins.iter().all(|l| l.accepted && l.credential == token), "{logins:?}");
    }
}

/// The client credentials as Basic authentication (RFC 6749 §2.3.1).
fn basic_auth(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

fn borrowed<'a>(keys: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    keys.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Confluent Cloud's and most identity providers' way in: OAUTHBEARER with OAuth client credentials, configured
/// with Kafka's JAAS line and callback handler. Every client of the worker asks the provider's token endpoint for
/// a token (a POST with the client id and secret as Basic authentication) and logs in with it; a secret the
/// provider refuses makes `/health` say why. Neither the secret nor the token is logged.
#[test]
fn oauthbearer_logs_in_with_a_token_from_the_identity_provider() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = OAuthCluster::start(dir.path());
    let keys = cluster.keys("idp-s3cret");
    let pipeline_dir = dir.path().join("pipeline");
    std::fs::create_dir_all(&pipeline_dir).unwrap();
    let mut worker = pipeline_moves_lines(&pipeline_dir, &cluster.gate.bootstrap(), &borrowed(&keys), 1000);
    assert_eq!(worker.stop(), Some(0));
    cluster.check_requests_and_logins();
    let log = worker.log_text();
    assert!(!log.contains("idp-s3cret") && !log.contains(&cluster.token), "{}", tail(&log, 20));

    // The provider refuses a wrong secret: no token, no login, and /health names the failure.
    let bootstrap = cluster.gate.bootstrap();
    let mut extra = vec![("bootstrap.servers", bootstrap.as_str())];
    let wrong = cluster.keys("not-the-secret");
    extra.extend(borrowed(&wrong));
    let refused_dir = dir.path().join("refused");
    std::fs::create_dir_all(&refused_dir).unwrap();
    let logins_before = cluster.gate.logins().len();
    let refused = WorkerSetup::new(&refused_dir, &extra).start();
    let why = refused_with(&refused, &["oauthbearer", "token"]);
    assert!(!refused.log_text().contains("not-the-secret"), "{}", tail(&refused.log_text(), 20));
    assert_eq!(cluster.gate.logins().len(), logins_before, "no login without a token: {why}");
}

/// Distributed mode with OAUTHBEARER (before 2026-12-08 it stopped at start): the group connection, which is
/// the worker's own and not librdkafka's, gets a token from the identity provider with the same client
/// credentials and logs in through the gate like the librdkafka clients, so two workers form their group and
/// run a pipeline. A refused secret makes `/health` name the group login.
#[test]
fn distributed_workers_form_their_group_over_oauthbearer() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = OAuthCluster::start(dir.path());
    let keys = cluster.keys("idp-s3cret");
    let keys = borrowed(&keys);
    let bootstrap = cluster.gate.bootstrap();
    let prefix = unique("oauth-dist");
    let mut first = distributed_setup(&dir.path().join("w0"), &bootstrap, &prefix, &keys).start_distributed();
    let mut second = distributed_setup(&dir.path().join("w1"), &bootstrap, &prefix, &keys).start_distributed();
    distributed_pipeline_moves_lines(dir.path(), &[&first, &second], 2000);
    assert_eq!(second.stop(), Some(0));
    assert_eq!(first.stop(), Some(0));
    cluster.check_requests_and_logins();
    for log in [first.log_text(), second.log_text()] {
        assert!(!log.contains("idp-s3cret") && !log.contains(&cluster.token), "{}", tail(&log, 20));
    }

    // The group connection's secret (the top-level one) is refused while its librdkafka clients' (`producer.`,
    // `consumer.`, `admin.`) is right: /health names the group's login.
    let mut keys: Vec<(String, String)> = cluster.keys("not-the-secret").into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    for prefix in ["producer.", "consumer.", "admin."] {
        keys.extend(cluster.keys("idp-s3cret").into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)));
    }
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let refused = distributed_setup(&dir.path().join("w2"), &bootstrap, &unique("oauth-wrong"), &keys).start_distributed();
    let message = refused_with(&refused, &["worker group"]);
    assert!(message.contains("401") && message.contains("oauthbearer"), "{message}");
    assert!(!message.contains("not-the-secret") && !refused.log_text().contains("not-the-secret"), "{message}");
}

/// A JKS store stops the worker at start with what to do, before any Kafka connection.
#[test]
fn a_jks_truststore_stops_the_worker_saying_how_to_convert_it() {
    let dir = tempfile::tempdir().unwrap();
    let jks = dir.path().join("truststore.jks");
    std::fs::write(&jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 0]).unwrap();
    let setup = WorkerSetup::new(
        dir.path(),
        &[("security.protocol", "SSL"), ("ssl.truststore.location", jks.to_str().unwrap()), ("ssl.truststore.password", "changeit")],
    );
    let out = std::process::Command::new(connect_binary()).arg("standalone").arg(&setup.worker_config).output().expect("connect");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("ssl.truststore.location") && stderr.contains("keytool"), "{stderr}");
    assert!(!stderr.contains("changeit"), "{stderr}");
}

/// A setting librdkafka refuses when a client is made (Kerberos: this build has no GSSAPI) stops the worker at
/// start with librdkafka's reason, instead of a worker that starts and fails every task.
#[test]
fn a_mechanism_this_build_lacks_stops_the_worker_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let setup = WorkerSetup::new(
        dir.path(),
        &[("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanism", "GSSAPI"), ("sasl.kerberos.service.name", "kafka")],
    );
    let out = std::process::Command::new(connect_binary()).arg("standalone").arg(&setup.worker_config).output().expect("connect");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("GSSAPI") && stderr.contains("client settings"), "{stderr}");
}

/// A distributed worker's setup on `bootstrap` (its group and storage topics named after `prefix`) with
/// `security` keys at the top level, where Kafka Connect's group member and clients read them.
fn distributed_setup(dir: &Path, bootstrap: &str, prefix: &str, security: &[(&str, &str)]) -> WorkerSetup {
    std::fs::create_dir_all(dir).unwrap();
    let keys = connect_e2e::cluster::distributed_keys(bootstrap, prefix);
    let mut keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    keys.extend_from_slice(security);
    WorkerSetup::new(dir, &keys)
}

/// Through `workers[0]`'s REST: a file source and sink; every line comes out, and `workers[1..]` see both
/// connectors RUNNING (they read the same config and status topics).
fn distributed_pipeline_moves_lines(dir: &Path, workers: &[&Worker], n: usize) {
    let input = dir.join("in.txt");
    let output = dir.join("out.txt");
    std::fs::write(&input, numbered_lines(0..n, 30)).unwrap();
    let topic = unique("secured-dist");
    for (name, config) in [
        ("dist-source", json!({"connector.class": "FileStreamSource", "file": input, "topic": topic})),
        ("dist-sink", json!({"connector.class": "FileStreamSink", "file": output, "topics": topic})),
    ] {
        connect_e2e::cluster::create(workers[0].port, name, config);
    }
    wait_for_or_explain(
        "every line through the secured cluster, in distributed mode",
        Duration::from_secs(120),
        || (line_count(&output) >= n).then_some(()),
        || workers.iter().map(|w| tail(&w.log_text(), 25)).collect::<Vec<_>>().join("\n---\n"),
    );
    assert_eq!(read_lines(&output), read_lines(&input), "the same lines, in order");
    for worker in workers {
        wait_for_or_explain(
            "both connectors RUNNING as every worker sees them",
            Duration::from_secs(60),
            || {
                let s = connect_e2e::cluster::statuses(worker.port);
                let running =
                    |name: &str| s.get(name).is_some_and(|(state, _, tasks)| state == "RUNNING" && tasks.iter().all(|t| t.0 == "RUNNING"));
                (running("dist-source") && running("dist-sink")).then_some(())
            },
            || format!("{:?}", connect_e2e::cluster::statuses(worker.port)),
        );
    }
}

/// Distributed mode on a SCRAM cluster (before 2026-12-07 it refused any `security.protocol` but PLAINTEXT at
/// start): two workers form their group through the coordinator over SASL_PLAINTEXT SCRAM-SHA-512 and run a
/// pipeline. A worker whose group login is refused (a wrong top-level password, while its `producer.`,
/// `consumer.` and `admin.` clients have the right one) says so in `/health`.
#[test]
fn distributed_workers_form_their_group_over_sasl_scram() {
    let dir = tempfile::tempdir().unwrap();
    let broker = SecuredBroker::start(dir.path(), &[("carol", "carol-s3cret", "scram512")]);
    let jaas = |password: &str| format!(r#"{SCRAM} required username="carol" password="{password}";"#);
    let right = jaas("carol-s3cret");
    fn security<'a>(prefix: &'a str, jaas: &'a str) -> Vec<(String, &'a str)> {
        vec![
            (format!("{prefix}security.protocol"), "SASL_PLAINTEXT"),
            (format!("{prefix}sasl.mechanism"), "SCRAM-SHA-512"),
            (format!("{prefix}sasl.jaas.config"), jaas),
        ]
    }
    let keys = security("", &right);
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let prefix = unique("scram-dist");
    let mut first = distributed_setup(&dir.path().join("w0"), &broker.bootstrap(), &prefix, &keys).start_distributed();
    let mut second = distributed_setup(&dir.path().join("w1"), &broker.bootstrap(), &prefix, &keys).start_distributed();
    distributed_pipeline_moves_lines(dir.path(), &[&first, &second], 2000);
    assert_eq!(second.stop(), Some(0));
    assert_eq!(first.stop(), Some(0));
    for log in [first.log_text(), second.log_text()] {
        assert!(!log.contains("carol-s3cret"), "the password never reaches the log");
    }

    let wrong = jaas("not-her-password");
    let mut keys = security("", &wrong);
    for prefix in ["producer.", "consumer.", "admin."] {
        keys.extend(security(prefix, &right));
    }
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let refused = distributed_setup(&dir.path().join("w2"), &broker.bootstrap(), &unique("scram-wrong"), &keys).start_distributed();
    let message = refused_with(&refused, &["worker group"]);
    assert!(message.contains("authentication"), "{message}");
    assert!(!message.contains("not-her-password") && !refused.log_text().contains("not-her-password"), "{message}");
}

/// Distributed mode over SASL_SSL with a client certificate (PEM stores, host names checked) through the TLS
/// terminator: the group connection's TLS and the librdkafka clients' both get in.
#[test]
fn a_distributed_worker_runs_over_sasl_ssl_with_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca_cert = ca("connect-rs Kafka test CA");
    let (server, server_key) = leaf(&ca_cert, &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let (client, client_key) = leaf(&ca_cert, &["connect-worker"], ExtendedKeyUsagePurpose::ClientAuth);
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
    let keystore_pem = dir.path().join("keystore.pem");
    std::fs::write(&keystore_pem, format!("{}{}", client_key.serialize_pem(), client.pem())).unwrap();
    let (_proxy, _broker, bootstrap) = broker_behind_tls(dir.path(), &ca_cert, &server, &server_key, ("dave", "dave-s3cret"));
    let jaas = format!(r#"{SCRAM} required username="dave" password="dave-s3cret";"#);
    let security = [
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.jaas.config", jaas.as_str()),
        ("ssl.truststore.location", ca_pem.to_str().unwrap()),
        ("ssl.truststore.type", "PEM"),
        ("ssl.keystore.location", keystore_pem.to_str().unwrap()),
        ("ssl.keystore.type", "PEM"),
        ("ssl.endpoint.identification.algorithm", "https"),
    ];
    let mut worker = distributed_setup(&dir.path().join("w0"), &bootstrap, &unique("tls-dist"), &security).start_distributed();
    distributed_pipeline_moves_lines(dir.path(), &[&worker], 1000);
    assert_eq!(worker.stop(), Some(0));
}
