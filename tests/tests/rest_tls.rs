//! REST over TLS (issue #13): `listeners=https://...` with Kafka Connect's `ssl.*` keys. A CA, a server
//! certificate for 127.0.0.1 and a client certificate are made at test time (rcgen); curl is the independent
//! client (as in the README's example) and the `connect` CLI the project's own.

use connect_e2e::*;
mod pki;

use pki::{ca, leaf};
use rcgen::ExtendedKeyUsagePurpose;
use serde_json::json;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// PEM files of a test PKI in `dir`.
struct Pki {
    ca: PathBuf,
    /// The server's private key followed by its chain: a Kafka `ssl.keystore.type=PEM` keystore.
    server_keystore: PathBuf,
    /// The same key and chain as a PKCS12 store with password `changeit`.
    server_p12: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// The CA certificate as a PKCS12 truststore with password `changeit`.
    ca_p12: PathBuf,
    /// A client certificate from a CA the worker does not trust.
    rogue_cert: PathBuf,
    rogue_key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    let ca_cert = ca("connect-rs test CA");
    let (server, server_key) = leaf(&ca_cert, &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let (client, client_key) = leaf(&ca_cert, &["ops-client"], ExtendedKeyUsagePurpose::ClientAuth);
    let rogue_ca = ca("someone else's CA");
    let (rogue, rogue_key) = leaf(&rogue_ca, &["rogue-client"], ExtendedKeyUsagePurpose::ClientAuth);
    let write = |name: &str, text: String| -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let mut store = p12_keystore::KeyStore::new();
    let chain = p12_keystore::PrivateKeyChain::new(
        "server",
        p12_keystore::PrivateKey::from_der(&server_key.serialize_der()).unwrap(),
        [p12_keystore::Certificate::from_der(server.der()).unwrap(), p12_keystore::Certificate::from_der(ca_cert.der()).unwrap()],
    );
    store.add_entry("server", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    let p12 = dir.join("server.p12");
    std::fs::write(&p12, store.writer("changeit").write().unwrap()).unwrap();
    let mut trust = p12_keystore::KeyStore::new();
    trust.add_entry("ca", p12_keystore::KeyStoreEntry::Certificate(p12_keystore::Certificate::from_der(ca_cert.der()).unwrap()));
    let ca_p12 = dir.join("truststore.p12");
    std::fs::write(&ca_p12, trust.writer("changeit").write().unwrap()).unwrap();
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        server_keystore: write("server-keystore.pem", format!("{}{}{}", server_key.serialize_pem(), server.pem(), ca_cert.pem())),
        server_p12: p12,
        ca_p12,
        client_cert: write("client.crt", client.pem()),
        client_key: write("client.key", client_key.serialize_pem()),
        rogue_cert: write("rogue.crt", rogue.pem()),
        rogue_key: write("rogue.key", rogue_key.serialize_pem()),
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// curl with `args`; returns (exit code, HTTP status or "000", body).
fn curl(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let out =
        Command::new("curl").args(["-sS", "--max-time", "20", "-o", p(&body), "-w", "%{http_code}"]).args(args).output().expect("run curl");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string(), std::fs::read_to_string(&body).unwrap_or_default())
}

/// The `connect` CLI; returns (exit code, stdout, stderr).
fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(connect_binary()).args(args).output().expect("run connect");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn https_with_required_client_certificates() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let port = free_port();
    let listener = format!("https://127.0.0.1:{port}");
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\n").unwrap();
    let mut setup = WorkerSetup::new(
        dir.path(),
        &[
            ("listeners", &listener),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", p(&pki.server_keystore)),
            ("ssl.client.auth", "required"),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", p(&pki.ca)),
        ],
    );
    setup.port = port;
    setup.connector("tls-src", json!({"connector.class": "FileStreamSource", "file": input, "topic": unique("e2e-tls")}));
    let mut worker = setup.start();
    let url = format!("{listener}/connectors");
    let with_cert = ["--cacert", p(&pki.ca), "--cert", p(&pki.client_cert), "--key", p(&pki.client_key)];

    // (1) A client with a certificate from the trusted CA gets the API over HTTPS.
    let (code, status, body) = curl(&[&with_cert[..], &[url.as_str()]].concat());
    assert_eq!((code, status.as_str()), (0, "200"), "curl with a client certificate: {body}\nlog:\n{}", tail(&worker.log_text(), 30));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap(), json!(["tls-src"]));

    // (2) Without a client certificate, or with one from another CA, the handshake is refused; plain HTTP on
    // the https port gets no HTTP answer either.
    let (code, status, _) = curl(&["--cacert", p(&pki.ca), &url]);
    assert!(code != 0 && status == "000", "no client certificate must be refused: curl exit {code}, status {status}");
    let (code, status, _) = curl(&["--cacert", p(&pki.ca), "--cert", p(&pki.rogue_cert), "--key", p(&pki.rogue_key), &url]);
    assert!(code != 0 && status == "000", "an untrusted client certificate must be refused: curl exit {code}, status {status}");
    let (code, status, _) = curl(&[&format!("http://127.0.0.1:{port}/connectors")]);
    assert!(status != "200", "plain HTTP on the https port: curl exit {code}, status {status}");

    // A connection stalled before its handshake holds up nobody, and the refusals above stopped nothing.
    let stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (code, status, _) = curl(&[&with_cert[..], &[&format!("{listener}/health")]].concat());
    assert_eq!((code, status.as_str()), (0, "200"), "health over HTTPS while another connection stalls");
    drop(stalled);

    // (3) The CLI with --cacert/--cert/--key lists connectors; without --cert it cannot get in (exit 3).
    let (code, out, err) = cli(&[&["--url", listener.as_str()], &with_cert[..], &["list"]].concat());
    assert_eq!(code, 0, "connect list over https: {out}{err}");
    assert!(out.contains("tls-src") && out.contains("NAME"), "{out}");
    let (code, out, err) = cli(&["--url", &listener, "--cacert", p(&pki.ca), "list"]);
    assert_eq!(code, 3, "connect list without a client certificate: {out}{err}");
    // Without --cacert the test CA is not trusted: the server is not who it says.
    let (code, _, err) = cli(&["--url", &listener, "--cert", p(&pki.client_cert), "--key", p(&pki.client_key), "list"]);
    assert_eq!(code, 3, "{err}");

    let log = worker.log_text();
    assert!(log.contains("TLS handshake failed"), "refused handshakes are logged:\n{}", tail(&log, 30));
    assert!(worker.is_running(), "the worker is still up");
    assert_eq!(worker.stop(), Some(0));
}

#[test]
fn pkcs12_stores_requested_client_auth_and_an_http_listener_beside_https() {
    require_broker();
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let http_port = free_port();
    let https_port = free_port();
    let listeners = format!("http://127.0.0.1:{http_port},https://127.0.0.1:{https_port}");
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\n").unwrap();
    let mut setup = WorkerSetup::new(
        dir.path(),
        &[
            ("listeners", &listeners),
            // The plain set points at nothing; the listeners.https. set replaces it, as in Kafka Connect.
            ("ssl.keystore.location", "/nonexistent/keystore.jks"),
            ("ssl.keystore.type", "JKS"),
            ("listeners.https.ssl.keystore.type", "PKCS12"),
            ("listeners.https.ssl.keystore.location", p(&pki.server_p12)),
            ("listeners.https.ssl.keystore.password", "changeit"),
            ("listeners.https.ssl.client.auth", "requested"),
            ("listeners.https.ssl.truststore.type", "PKCS12"),
            ("listeners.https.ssl.truststore.location", p(&pki.ca_p12)),
            ("listeners.https.ssl.truststore.password", "changeit"),
        ],
    );
    setup.port = http_port;
    setup.connector("p12-src", json!({"connector.class": "FileStreamSource", "file": input, "topic": unique("e2e-tls-p12")}));
    let worker = setup.start();
    let url = format!("https://127.0.0.1:{https_port}/connectors");
    // (4) The PKCS12 keystore serves HTTPS. `requested`: no certificate is let in, a trusted one too ...
    let (code, status, body) = curl(&["--cacert", p(&pki.ca), &url]);
    assert_eq!((code, status.as_str()), (0, "200"), "{body}\nlog:\n{}", tail(&worker.log_text(), 30));
    let (code, status, _) = curl(&["--cacert", p(&pki.ca), "--cert", p(&pki.client_cert), "--key", p(&pki.client_key), &url]);
    assert_eq!((code, status.as_str()), (0, "200"));
    // ... but one the PKCS12 truststore's CA did not sign is refused.
    let (code, status, _) = curl(&["--cacert", p(&pki.ca), "--cert", p(&pki.rogue_cert), "--key", p(&pki.rogue_key), &url]);
    assert!(code != 0 && status == "000", "an untrusted client certificate must be refused: curl exit {code}, status {status}");
    // The http listener serves the same API, and the worker id is the first listener's address.
    let (code, body) = worker.get("/connectors");
    assert_eq!((code, body), (200, json!(["p12-src"])));
    let (code, status) = worker.get("/connectors/p12-src/status");
    assert_eq!(code, 200);
    assert_eq!(status["connector"]["worker_id"], format!("127.0.0.1:{http_port}"));
    let (code, out, err) = cli(&["--url", &format!("https://127.0.0.1:{https_port}"), "--cacert", p(&pki.ca), "list"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("p12-src"), "{out}");
}

#[test]
fn invalid_tls_settings_stop_the_worker_at_startup_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "an https listener needs a keystore: set ssl.keystore.location"),
        (&[("ssl.keystore.location", p(&pki.server_keystore)), ("ssl.client.auth", "required")], "ssl.client.auth=required needs the CA"),
        (
            &[("ssl.keystore.location", p(&pki.server_p12)), ("ssl.keystore.type", "PKCS12"), ("ssl.keystore.password", "wrong")],
            "cannot open the PKCS12 store",
        ),
    ];
    for (extra, expected) in cases {
        let port = free_port();
        let listener = format!("https://127.0.0.1:{port}");
        let mut settings = vec![("listeners", listener.as_str())];
        settings.extend_from_slice(extra);
        let setup = WorkerSetup::new(dir.path(), &settings);
        let out = Command::new(connect_binary()).arg("standalone").arg(&setup.worker_config).output().expect("run connect");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "expected '{expected}' in:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(std::net::TcpStream::connect_timeout(&format!("127.0.0.1:{port}").parse().unwrap(), Duration::from_millis(200)).is_err());
    }
}
