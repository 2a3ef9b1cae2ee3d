//! A local HTTP server standing in for a webhook or the Telegram Bot API: it records every request, answers
//! as the test's responder says, and can go down (connections refused) and come back on the same port.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub content_type: String,
    /// The `Authorization` header, empty when there was none.
    pub authorization: String,
    pub body: String,
    pub at: Instant,
    /// The status the server answered.
    pub status: u16,
}

/// Decides the answer to call number `n` (0-based) with these headers and this body.
type Responder = Box<dyn FnMut(usize, &HeaderMap, &str) -> Response + Send>;

struct Shared {
    calls: Mutex<Vec<Call>>,
    respond: Mutex<Responder>,
}

/// See the [module docs](self).
pub struct HttpTarget {
    shared: Arc<Shared>,
    address: SocketAddr,
    runtime: tokio::runtime::Runtime,
    shutdown: Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

/// A 200 with Telegram's `{"ok":true}`.
pub fn ok() -> Response {
    (StatusCode::OK, r#"{"ok":true,"result":{}}"#).into_response()
}

/// An answer with this status and body.
pub fn answer(status: u16, body: &str) -> Response {
    (StatusCode::from_u16(status).expect("a status"), body.to_string()).into_response()
}

/// An answer with this status and a JSON body, as `Content-Type: application/json`.
pub fn json_answer(status: u16, body: &str) -> Response {
    let content_type = [(axum::http::header::CONTENT_TYPE, "application/json")];
    (StatusCode::from_u16(status).expect("a status"), content_type, body.to_string()).into_response()
}

impl HttpTarget {
    /// A server on a free port that answers 200 until told otherwise.
    pub fn start() -> Self {
        Self::with_responder(|_, _| ok())
    }

    pub fn with_responder(mut respond: impl FnMut(usize, &str) -> Response + Send + 'static) -> Self {
        Self::with_header_responder(move |n, _, body| respond(n, body))
    }

    /// A server whose answers may depend on the request's headers (an identity provider checking credentials).
    pub fn with_header_responder(respond: impl FnMut(usize, &HeaderMap, &str) -> Response + Send + 'static) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let address = runtime.block_on(async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap() });
        let shared = Arc::new(Shared { calls: Mutex::default(), respond: Mutex::new(Box::new(respond)) });
        let mut target = HttpTarget { shared, address, runtime, shutdown: None };
        target.up();
        target
    }

    /// Replace the responder.
    pub fn respond(&self, mut respond: impl FnMut(usize, &str) -> Response + Send + 'static) {
        *self.shared.respond.lock().unwrap() = Box::new(move |n, _, body| respond(n, body));
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// How many requests reached `path`.
    pub fn count(&self, path: &str) -> usize {
        self.shared.calls.lock().unwrap().iter().filter(|c| c.path == path).count()
    }

    /// Bodies of the requests answered with a 2xx.
    pub fn delivered(&self) -> Vec<String> {
        self.shared.calls.lock().unwrap().iter().filter(|c| (200..300).contains(&c.status)).map(|c| c.body.clone()).collect()
    }

    /// Stop listening and close every connection: clients get "connection refused" until [`up`](Self::up).
    pub fn down(&mut self) {
        if let Some((stop, server)) = self.shutdown.take() {
            let _ = stop.send(());
            self.runtime.block_on(async {
                let _ = server.await;
            });
        }
    }

    /// Listen again on the same port.
    pub fn up(&mut self) {
        if self.shutdown.is_some() {
            return;
        }
        let shared = self.shared.clone();
        let app = Router::new()
            .fallback(any(
                |State(s): State<Arc<Shared>>, method: Method, uri: axum::http::Uri, headers: HeaderMap, body: String| async move {
                    let response = {
                        let n = s.calls.lock().unwrap().len();
                        (s.respond.lock().unwrap())(n, &headers, &body)
                    };
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    let (content_type, authorization) = (header("content-type"), header("authorization"));
                    s.calls.lock().unwrap().push(Call {
                        method: method.to_string(),
                        path: uri.path().to_string(),
                        content_type,
                        authorization,
                        body,
                        at: Instant::now(),
                        status: response.status().as_u16(),
                    });
                    response
                },
            ))
            .with_state(shared);
        let address = self.address;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listener = self.runtime.block_on(async {
            // The port may linger briefly after a close; retry the bind for a little while.
            for _ in 0..100 {
                match tokio::net::TcpListener::bind(address).await {
                    Ok(l) => return l,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            }
            panic!("cannot listen on {address} again")
        });
        let server = self.runtime.spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        self.shutdown = Some((stop, server));
    }
}

impl Drop for HttpTarget {
    fn drop(&mut self) {
        self.down();
    }
}
