//! The REST API, in Kafka Connect's shapes. Status: the read endpoints, create, delete, plugins,
//! validate and health are here; the rest of §1.2 is tracked in the README's status table (issue #3).

pub mod auth;
pub mod offsets;
pub mod prometheus;
pub mod tls;
pub mod ui;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use connect_core::config::config_from_json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use crate::config::connector;
use crate::control::{Herder, HerderError};
use crate::kafka::health::WorkerHealth;
use crate::rest::auth::RestAuth;
use crate::store::connectors::TargetState;

/// `{"error_code":N,"message":"..."}` with that status.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error_code": self.0.as_u16(), "message": self.1}))).into_response()
    }
}

impl From<HerderError> for ApiError {
    fn from(e: HerderError) -> Self {
        let status = match e {
            HerderError::NotFound(_) => StatusCode::NOT_FOUND,
            HerderError::AlreadyExists(_) | HerderError::Conflict(_) => StatusCode::CONFLICT,
            HerderError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HerderError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The OpenAPI 3 document of every endpoint (checked against this router by a test).
pub const OPENAPI: &str = include_str!("openapi.json");

/// The REST API; with `auth`, every endpoint but `/health` requires credentials.
pub fn router(herder: Arc<Herder>, auth: Option<Arc<RestAuth>>) -> Router {
    router_with(herder, auth, |routes| routes)
}

/// [`router`] with `inner` wrapped around the routes inside the authentication (distributed mode's
/// forwarding: a request is authenticated before it is forwarded).
pub fn router_with(herder: Arc<Herder>, auth: Option<Arc<RestAuth>>, inner: impl FnOnce(Router) -> Router) -> Router {
    let router = inner(routes(herder));
    match auth {
        Some(auth) => router.layer(axum::middleware::from_fn_with_state(auth, crate::rest::auth::require_auth)),
        None => router,
    }
}

fn routes(herder: Arc<Herder>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/openapi.json", get(openapi))
        .route("/connector-plugins/{plugin}/config", get(plugin_config))
        .route("/health", get(health))
        .route("/connectors", get(list_connectors).post(create_connector))
        .route("/connectors/{name}", get(get_connector).delete(delete_connector))
        .route("/connectors/{name}/config", get(get_config).put(put_config).patch(patch_config))
        .route("/connectors/{name}/pause", put(pause_connector))
        .route("/connectors/{name}/resume", put(resume_connector))
        .route("/connectors/{name}/stop", put(stop_connector))
        .route("/connectors/{name}/topics", get(get_topics))
        .route("/connectors/{name}/topics/reset", put(reset_topics))
        .route("/connectors/{name}/tasks-config", get(get_tasks_config))
        .route("/admin/loggers", get(list_loggers))
        .route("/admin/loggers/{logger}", get(get_logger).put(put_logger))
        .route("/connectors/{name}/status", get(get_status))
        .route("/connectors/{name}/tasks", get(get_tasks))
        .route("/connectors/{name}/tasks/{task}/status", get(get_task_status))
        .route("/connectors/{name}/tasks/{task}/restart", post(restart_task))
        .route("/connectors/{name}/restart", post(restart_connector))
        .route("/connectors/{name}/offsets", get(get_offsets).patch(patch_offsets).delete(delete_offsets))
        .route("/connectors/{name}/metrics", get(get_metrics))
        .route("/metrics", get(prometheus::get))
        .route("/connector-plugins", get(list_plugins))
        .route("/connector-plugins/{plugin}/config/validate", put(validate))
        .merge(ui::routes())
        .with_state(herder)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `GET /connector-plugins/{plugin}/config`: the definition of any plugin's keys (KIP-769).
async fn plugin_config(State(h): State<Arc<Herder>>, Path(plugin): Path<String>) -> ApiResult<Response> {
    let registry = &h.context().registry;
    let (class, def) = if let Some(p) = registry.connector(&plugin) {
        let instance = (p.create)();
        (p.class, connector::common_def(p.kind).merge(&instance.as_connector().config_def()))
    } else if let Some(c) = registry.converter(&plugin) {
        (registry.converter_class(&plugin).unwrap_or(""), c.config_def())
    } else if let Some((class, t)) = registry.transformation(&plugin) {
        (class, t.config_def())
    } else if let Some(p) = registry.predicate(&plugin) {
        ("", p.config_def())
    } else {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("Unknown plugin {plugin}.")));
    };
    let infos = def.validate(class, &connect_core::Config::new());
    let keys: Vec<_> = infos.configs.into_iter().map(|c| c.definition).collect();
    Ok(Json(keys).into_response())
}

async fn root(State(h): State<Arc<Herder>>) -> impl IntoResponse {
    let context = h.context();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("CONNECT_RS_COMMIT").unwrap_or("unknown"),
        "kafka_cluster_id": context.health.cluster_id(),
    }))
}

/// KIP-1017: 200 healthy, 503 while starting, 500 when the worker cannot do its job (Kafka unreachable).
async fn health(State(h): State<Arc<Herder>>) -> Response {
    let (code, status, message) = match h.context().health.get() {
        WorkerHealth::Starting => (StatusCode::SERVICE_UNAVAILABLE, "starting", "Worker is still starting up.".to_string()),
        WorkerHealth::Healthy => (StatusCode::OK, "healthy", "Worker has completed startup and is ready to handle requests.".to_string()),
        WorkerHealth::Unhealthy(m) => (StatusCode::INTERNAL_SERVER_ERROR, "unhealthy", m),
    };
    (code, Json(json!({"status": status, "message": message}))).into_response()
}

async fn list_connectors(State(h): State<Arc<Herder>>, Query(q): Query<Vec<(String, String)>>) -> ApiResult<Response> {
    let expands: Vec<String> = q.into_iter().filter(|(k, _)| k == "expand").map(|(_, v)| v).collect();
    let names = h.names();
    if expands.is_empty() {
        return Ok(Json(names).into_response());
    }
    let wants = |what: &str| expands.iter().any(|e| e == what);
    // One snapshot for every entry: a connector deleted meanwhile is left out whole, never listed without
    // its status or info (kafbat kafka-ui fails on such an entry), and tasks in `info` match `status`.
    // `metrics` is connect-rs's (the status page's one call); Kafka Connect ignores expands it does not know.
    let mut out = serde_json::Map::new();
    for e in h.expanded(wants("status"), wants("info"), wants("metrics")) {
        let mut entry = serde_json::Map::new();
        if let Some(s) = e.status {
            entry.insert("status".into(), serde_json::to_value(s).unwrap_or_default());
        }
        if let Some(i) = e.info {
            entry.insert("info".into(), serde_json::to_value(i).unwrap_or_default());
        }
        if let Some(m) = e.metrics {
            entry.insert("metrics".into(), json!({"tasks": task_metrics_json(m)}));
        }
        out.insert(e.name, entry.into());
    }
    Ok(Json(out).into_response())
}

fn parse_json(body: &[u8]) -> ApiResult<serde_json::Value> {
    serde_json::from_slice(body).map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("Request body is not valid JSON: {e}")))
}

async fn create_connector(State(h): State<Arc<Herder>>, body: axum::body::Bytes) -> ApiResult<Response> {
    let json = parse_json(&body)?;
    let obj = json.as_object().ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "Request body must be a JSON object".into()))?;
    let name = obj.get("name").and_then(|n| n.as_str()).map(str::to_string);
    let config_json = obj
        .get("config")
        .and_then(|c| c.as_object())
        .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "Request body must contain a 'config' object".into()))?;
    let mut config = config_from_json(config_json).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    match (&name, config.get("name")) {
        (Some(n), Some(c)) if n != c => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "Connector name configuration (".to_string() + c + ") doesn't match connector name in the URL (" + n + ")",
            ))
        }
        (Some(n), None) => {
            config.insert("name".into(), n.clone());
        }
        (None, None) => return Err(ApiError(StatusCode::BAD_REQUEST, "Connector config must contain a name".into())),
        _ => {}
    }
    let target = match obj.get("initial_state") {
        None | Some(serde_json::Value::Null) => TargetState::Running,
        Some(serde_json::Value::String(s)) => TargetState::parse(s).ok_or_else(|| {
            ApiError(StatusCode::BAD_REQUEST, format!("Invalid initial state {s}: must be one of RUNNING, PAUSED, STOPPED"))
        })?,
        Some(other) => return Err(ApiError(StatusCode::BAD_REQUEST, format!("Invalid initial state {other}"))),
    };
    let info = h.create_in_state(config, target).await?;
    let location = format!("/connectors/{}", info.name);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(info)).into_response())
}

async fn get_connector(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(h.info(&name)?).into_response())
}

async fn get_config(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(h.info(&name)?.config).into_response())
}

async fn delete_connector(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    h.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_status(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(h.status(&name)?).into_response())
}

async fn get_tasks(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(h.tasks(&name)?).into_response())
}

async fn get_task_status(State(h): State<Arc<Herder>>, Path((name, task)): Path<(String, String)>) -> ApiResult<Response> {
    let status = h.status(&name)?;
    let id: u32 = task.parse().map_err(|_| ApiError(StatusCode::NOT_FOUND, format!("Task {name}-{task} not found")))?;
    let t = status
        .tasks
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("Task {name}-{id} not found")))?;
    Ok(Json(t).into_response())
}

/// connect-rs extension: per-task counters, named after Kafka Connect's task error metrics.
async fn get_metrics(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<Response> {
    let tasks = task_metrics_json(h.metrics(&name)?);
    Ok(Json(json!({"name": name, "tasks": tasks})).into_response())
}

fn task_metrics_json(tasks: Vec<(u32, crate::runtime::metrics::TaskMetricsSnapshot)>) -> Vec<serde_json::Value> {
    tasks
        .into_iter()
        .map(|(id, m)| {
            let mut v = serde_json::to_value(m).unwrap_or_default();
            v["id"] = id.into();
            v
        })
        .collect()
}

async fn get_offsets(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(offsets::get(&h, &name).await?).into_response())
}

async fn patch_offsets(State(h): State<Arc<Herder>>, Path(name): Path<String>, body: axum::body::Bytes) -> ApiResult<Response> {
    let json = parse_json(&body)?;
    Ok(Json(offsets::alter(&h, &name, &json).await?).into_response())
}

async fn delete_offsets(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(offsets::reset(&h, &name).await?).into_response())
}

async fn put_config(State(h): State<Arc<Herder>>, Path(name): Path<String>, body: axum::body::Bytes) -> ApiResult<Response> {
    let json = parse_json(&body)?;
    let obj =
        json.as_object().ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "Request body must be a JSON object of config keys".into()))?;
    let config = config_from_json(obj).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let (created, info) = h.put_config(&name, config).await?;
    if created {
        let location = format!("/connectors/{}", info.name);
        return Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(info)).into_response());
    }
    Ok(Json(info).into_response())
}

async fn patch_config(State(h): State<Arc<Herder>>, Path(name): Path<String>, body: axum::body::Bytes) -> ApiResult<Response> {
    let json = parse_json(&body)?;
    let obj =
        json.as_object().ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "Request body must be a JSON object of config keys".into()))?;
    let mut patch = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        if v.is_null() {
            patch.push((k.clone(), None));
        } else {
            let single: serde_json::Map<String, serde_json::Value> = [(k.clone(), v.clone())].into_iter().collect();
            let value = config_from_json(&single).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?.remove(k);
            patch.push((k.clone(), value));
        }
    }
    Ok(Json(h.patch_config(&name, patch).await?).into_response())
}

async fn pause_connector(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    h.pause(&name).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn resume_connector(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    h.resume(&name).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn stop_connector(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    h.stop(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_topics(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<Response> {
    let topics = h.topics(&name)?;
    Ok(Json(json!({ name: {"topics": topics} })).into_response())
}

async fn reset_topics(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    h.reset_topics(&name).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Deprecated in Kafka Connect, still used by some tools: `{"<name>-<n>": {config}}`.
async fn get_tasks_config(State(h): State<Arc<Herder>>, Path(name): Path<String>) -> ApiResult<Response> {
    let tasks = h.tasks(&name)?;
    let map: serde_json::Map<String, serde_json::Value> = tasks
        .into_iter()
        .map(|t| (format!("{}-{}", t.id.connector, t.id.task), serde_json::to_value(t.config).unwrap_or_default()))
        .collect();
    Ok(Json(map).into_response())
}

fn log_control() -> ApiResult<&'static crate::logging::LogControl> {
    crate::logging::control().ok_or_else(|| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "logging is not under run-time control".into()))
}

async fn list_loggers() -> ApiResult<Response> {
    Ok(Json(log_control()?.list()).into_response())
}

async fn get_logger(Path(logger): Path<String>) -> ApiResult<Response> {
    Ok(Json(log_control()?.get(&logger)).into_response())
}

async fn put_logger(Path(logger): Path<String>, body: axum::body::Bytes) -> ApiResult<Response> {
    let json = parse_json(&body)?;
    let level = json
        .get("level")
        .and_then(|l| l.as_str())
        .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "The request body must contain a 'level' field".into()))?;
    let level =
        crate::logging::level_name(level).ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("invalid log level '{level}'.")))?;
    if !crate::logging::valid_logger(&logger) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("invalid logger name '{logger}': use a module path such as connect_worker::runtime::sink, or root"),
        ));
    }
    let affected = log_control()?.set(&logger, level).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(Json(affected).into_response())
}

async fn restart_task(State(h): State<Arc<Herder>>, Path((name, task)): Path<(String, String)>) -> ApiResult<StatusCode> {
    let id: u32 = task.parse().map_err(|_| ApiError(StatusCode::NOT_FOUND, format!("Task {name}-{task} not found")))?;
    h.restart_task(&name, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct RestartQuery {
    #[serde(rename = "includeTasks", default)]
    include_tasks: bool,
    #[serde(rename = "onlyFailed", default)]
    only_failed: bool,
}

async fn restart_connector(State(h): State<Arc<Herder>>, Path(name): Path<String>, Query(q): Query<RestartQuery>) -> ApiResult<Response> {
    let status = h.restart_connector(&name, q.include_tasks, q.only_failed).await?;
    if !q.include_tasks && !q.only_failed {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

#[derive(Deserialize)]
struct PluginsQuery {
    #[serde(rename = "connectorsOnly")]
    connectors_only: Option<bool>,
}

async fn list_plugins(State(h): State<Arc<Herder>>, Query(q): Query<PluginsQuery>) -> impl IntoResponse {
    Json(h.context().registry.plugin_infos(q.connectors_only.unwrap_or(true)))
}

async fn validate(State(h): State<Arc<Herder>>, Path(plugin): Path<String>, body: axum::body::Bytes) -> ApiResult<Response> {
    let json = parse_json(&body)?;
    let obj = json.as_object().ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "Request body must be a JSON object".into()))?;
    let mut config = config_from_json(obj).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let registry = &h.context().registry;
    let plugin_class = registry.connector(&plugin).map(|p| p.class).ok_or_else(|| {
        ApiError(StatusCode::NOT_FOUND, format!("Failed to find any class that implements Connector and which name matches {plugin}"))
    })?;
    match config.get(connector::CONNECTOR_CLASS) {
        Some(c) if registry.connector(c).map(|p| p.class) != Some(plugin_class) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "Included connector type ".to_string() + c + " does not match request type " + &plugin,
            ));
        }
        None => {
            config.insert(connector::CONNECTOR_CLASS.into(), plugin_class.into());
        }
        _ => {}
    }
    let (_, infos) = connector::validate(registry, &h.context().worker.providers, &config).expect("class resolved above");
    Ok(Json(infos).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every (method, path) the router serves, read from this file's `.route(...)` calls.
    fn router_operations() -> BTreeSet<(String, String)> {
        let source = include_str!("mod.rs");
        let mut ops = BTreeSet::new();
        for line in source.lines().map(str::trim).filter(|l| l.starts_with(".route(\"")) {
            let path = line.split('"').nth(1).unwrap().to_string();
            for method in ["get", "post", "put", "patch", "delete"] {
                if line.contains(&format!("{method}(")) {
                    ops.insert((method.to_string(), path.clone()));
                }
            }
        }
        ops
    }

    #[test]
    fn openapi_document_matches_the_router() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with('3')), Some(true));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let served = router_operations();
        assert!(served.len() > 20, "the route scan found {served:?}");
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty() && unserved.is_empty(),
            "served but not documented: {undocumented:?}; documented but not served: {unserved:?}"
        );
    }
}
