//! A TLS terminator in front of a test broker. No broker here serves TLS (tansu 0.6.0 does not), and what the
//! tests are about is the worker's side: its Kafka clients speak TLS to this proxy (the server certificate
//! given here; with a client CA, client certificates are required), and the proxy speaks plain Kafka to the
//! broker, which advertises the proxy's address so every connection goes through it.

use crate::tcp_server::TcpServer;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct TlsProxy {
    pub port: u16,
    _server: TcpServer,
}

impl TlsProxy {
    /// Listen on a free port now; forward each TLS connection to `target` (`host:port`).
    pub fn start(target: &str, chain_pem: &str, key_pem: &str, client_ca_pem: Option<&str>) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(chain_pem.as_bytes()).collect::<Result<_, _>>().expect("the proxy's certificate chain");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("the proxy's key");
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
        let config = match client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    roots.add(cert.expect("client CA")).expect("client CA");
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        }
        .with_single_cert(chain, key)
        .expect("the proxy's certificate and key");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        // From the harness's port registry, so no other server of this test binary is handed the same port.
        let listener = std::net::TcpListener::bind(("127.0.0.1", crate::free_port())).unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = target.to_string();
        let server = TcpServer::start(listener, move |client| {
            let (acceptor, target) = (acceptor.clone(), target.clone());
            async move {
                // A failed handshake (no or an untrusted client certificate) just closes the connection,
                // as a TLS broker would.
                let Ok(mut tls) = acceptor.accept(client).await else { return };
                let Ok(mut broker) = tokio::net::TcpStream::connect(&target).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
            }
        });
        TlsProxy { port, _server: server }
    }
}
