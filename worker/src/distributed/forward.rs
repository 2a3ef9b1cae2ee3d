//! REST in distributed mode, as Kafka Connect does it: config changes (create, update, delete, pause,
//! resume, stop, restart) go to the leader, which writes them to the config topic; requests about one
//! connector go to the worker running it (its metrics, offsets, task restarts, live status); everything
//! else is answered here. A forwarded request carries [`FORWARDED`] and is never forwarded again, so a
//! request bounces at most once even while workers disagree about who runs what.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

use super::cluster::ClusterState;

/// Set on a request one worker forwards to another (the loop guard).
pub const FORWARDED: &str = "x-connect-rs-forwarded-by";
/// Bodies larger than this are not forwarded.
const MAX_BODY: usize = 16 * 1024 * 1024;
const REBALANCING: &str = "Cannot complete request because of a conflicting operation (e.g. worker rebalance)";

#[derive(Debug, PartialEq)]
enum Route {
    Here,
    Leader,
    /// The worker running the connector instance.
    Owner(String),
    /// The worker running one task.
    TaskOwner(String, u32),
}

fn route(method: &Method, path: &str) -> Route {
    let segments: Vec<String> =
        path.trim_matches('/').split('/').map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["connectors"] if method == Method::POST => Route::Leader,
        ["connectors", _] if method == Method::DELETE => Route::Leader,
        ["connectors", _, "config"] if method == Method::PUT || method == Method::PATCH => Route::Leader,
        ["connectors", _, "pause" | "resume" | "stop"] if method == Method::PUT => Route::Leader,
        ["connectors", _, "restart"] if method == Method::POST => Route::Leader,
        // Configs come from the config topic, which every worker follows.
        ["connectors", _] | ["connectors", _, "config"] if method == Method::GET => Route::Here,
        ["connectors", name, "tasks", id, ..] if id.parse::<u32>().is_ok() => {
            Route::TaskOwner(name.to_string(), id.parse().expect("checked"))
        }
        ["connectors", name, ..] => Route::Owner(name.to_string()),
        _ => Route::Here,
    }
}

pub struct Forwarder {
    pub cluster: Arc<ClusterState>,
    pub client: reqwest::Client,
}

impl Forwarder {
    pub fn new(cluster: Arc<ClusterState>) -> Arc<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(90))
            .build()
            .expect("a plain HTTP client");
        Arc::new(Forwarder { cluster, client })
    }
}

fn conflict(message: &str) -> Response {
    (StatusCode::CONFLICT, axum::Json(serde_json::json!({"error_code": 409, "message": message}))).into_response()
}

/// The axum middleware.
pub async fn forward(State(forwarder): State<Arc<Forwarder>>, request: Request, next: Next) -> Response {
    if request.headers().contains_key(FORWARDED) {
        return next.run(request).await;
    }
    let cluster = &forwarder.cluster;
    match route(request.method(), request.uri().path()) {
        Route::Here => next.run(request).await,
        Route::Leader => {
            let role = cluster.role();
            if !role.in_group || role.leader_url.is_empty() {
                return conflict(REBALANCING);
            }
            if role.is_leader {
                return next.run(request).await;
            }
            match proxy(&forwarder, &role.leader_url, request).await {
                Ok(response) => response,
                Err(e) => {
                    tracing::warn!(leader = %role.leader_url, error = %e, "cannot forward a request to the leader");
                    conflict(REBALANCING)
                }
            }
        }
        Route::Owner(name) => forward_to_owner(&forwarder, cluster.owner_of(&name), request, next).await,
        Route::TaskOwner(name, id) => forward_to_owner(&forwarder, cluster.owner_of_task(&name, id), request, next).await,
    }
}

/// Send the request to the worker running what it is about, or answer here when that is this worker,
/// nobody, or a worker that cannot be reached.
async fn forward_to_owner(forwarder: &Forwarder, owner: Option<String>, request: Request, next: Next) -> Response {
    let cluster = &forwarder.cluster;
    match owner.filter(|owner| *owner != cluster.worker_id) {
        Some(owner) => {
            let url = format!("http://{owner}");
            // The request is needed again if the owner cannot be reached: keep the body.
            let (parts, body) = request.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
                return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
            };
            let copy = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
            match proxy(forwarder, &url, copy).await {
                Ok(response) => response,
                Err(e) => {
                    // The status topic may still name a worker that died: answer from here.
                    tracing::debug!(owner = %url, error = %e, "cannot forward to the connector's worker; answering here");
                    next.run(Request::from_parts(parts, Body::from(bytes))).await
                }
            }
        }
        None => next.run(request).await,
    }
}

async fn proxy(forwarder: &Forwarder, base: &str, request: Request) -> Result<Response, String> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| e.to_string())?;
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    let mut outgoing = forwarder.client.request(parts.method.clone(), &url).body(body);
    for (name, value) in &parts.headers {
        if matches!(name.as_str(), "content-type" | "accept" | "authorization") {
            outgoing = outgoing.header(name, value);
        }
    }
    outgoing = outgoing.header(FORWARDED, forwarder.cluster.url.as_str());
    let response = outgoing.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let kept: Vec<(axum::http::HeaderName, HeaderValue)> =
        [axum::http::header::CONTENT_TYPE, axum::http::header::LOCATION, axum::http::header::WWW_AUTHENTICATE]
            .into_iter()
            .filter_map(|name| {
                let value = response.headers().get(name.as_str())?;
                Some((name, HeaderValue::from_bytes(value.as_bytes()).ok()?))
            })
            .collect();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    let mut answer = Response::new(Body::from(bytes));
    *answer.status_mut() = status;
    answer.headers_mut().extend(kept);
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_go_to_the_leader_and_connector_reads_to_its_worker() {
        assert_eq!(route(&Method::POST, "/connectors"), Route::Leader);
        assert_eq!(route(&Method::GET, "/connectors"), Route::Here);
        assert_eq!(route(&Method::PUT, "/connectors/a/config"), Route::Leader);
        assert_eq!(route(&Method::PATCH, "/connectors/a/config"), Route::Leader);
        assert_eq!(route(&Method::DELETE, "/connectors/a"), Route::Leader);
        assert_eq!(route(&Method::PUT, "/connectors/a/stop"), Route::Leader);
        assert_eq!(route(&Method::POST, "/connectors/a/restart"), Route::Leader);
        assert_eq!(route(&Method::GET, "/connectors/a%20b/status"), Route::Owner("a b".into()));
        assert_eq!(route(&Method::GET, "/connectors/a/config"), Route::Here);
        assert_eq!(route(&Method::POST, "/connectors/a/tasks/0/restart"), Route::TaskOwner("a".into(), 0));
        assert_eq!(route(&Method::GET, "/connectors/a/tasks/2/status"), Route::TaskOwner("a".into(), 2));
        assert_eq!(route(&Method::GET, "/connectors/a/tasks"), Route::Owner("a".into()));
        assert_eq!(route(&Method::DELETE, "/connectors/a/offsets"), Route::Owner("a".into()));
        assert_eq!(route(&Method::GET, "/connector-plugins"), Route::Here);
        assert_eq!(route(&Method::GET, "/health"), Route::Here);
    }
}
