//! The `connect` command's client subcommands: the REST API for people and scripts, with readable
//! tables (or `--output json`) and exit codes scripts can use:
//! 0 success, 1 the worker answered with an error (or validation found errors), 3 the worker could not be
//! reached. (clap exits 2 on a usage error.)

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub const EXIT_OK: i32 = 0;
pub const EXIT_API_ERROR: i32 = 1;
pub const EXIT_UNREACHABLE: i32 = 3;

/// How to reach the worker.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub url: String,
    /// `user:password` for HTTP basic.
    pub user: Option<String>,
    pub token: Option<String>,
    pub json: bool,
    /// PEM CA certificate(s) to trust for an https `url`, instead of the built-in roots (curl's `--cacert`).
    pub cacert: Option<PathBuf>,
    /// PEM client certificate (chain) and its private key, for a worker with `ssl.client.auth`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientOptions {
    /// The HTTP client these options ask for: rustls, with the given CA and client certificate.
    fn http_client(&self) -> Result<reqwest::Client, ClientError> {
        let read = |path: &PathBuf| std::fs::read(path).map_err(|e| ClientError::Input(format!("cannot read {}: {e}", path.display())));
        let mut builder = reqwest::Client::builder().use_rustls_tls();
        if let Some(path) = &self.cacert {
            let certs = reqwest::Certificate::from_pem_bundle(&read(path)?)
                .map_err(|e| ClientError::Input(format!("--cacert {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(ClientError::Input(format!("--cacert {}: no PEM certificate", path.display())));
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let mut pem = read(cert)?;
                pem.push(b'\n');
                pem.extend(read(key)?);
                let identity = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| ClientError::Input(format!("--cert {} --key {}: {e}", cert.display(), key.display())))?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => return Err(ClientError::Input("--cert and --key go together".into())),
        }
        builder.build().map_err(|e| ClientError::Input(format!("cannot set up the HTTP client: {e}")))
    }
}

/// A client subcommand.
#[derive(Debug, Clone)]
pub enum ClientCommand {
    List,
    Status { name: Option<String> },
    Create { file: std::path::PathBuf },
    Update { file: std::path::PathBuf },
    Delete { name: String },
    Pause { name: String },
    Resume { name: String },
    Stop { name: String },
    Restart { name: String, task: Option<u32>, include_tasks: bool, only_failed: bool },
    RestartFailed,
    Validate { file: std::path::PathBuf },
    OffsetsGet { name: String },
    OffsetsAlter { name: String, file: std::path::PathBuf },
    OffsetsReset { name: String },
    Plugins { all: bool },
}

#[derive(Debug)]
enum ClientError {
    Unreachable(String),
    Api(u16, String),
    Input(String),
}

struct Client {
    http: reqwest::Client,
    opts: ClientOptions,
}

impl Client {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<(u16, Value), ClientError> {
        let url = format!("{}{}", self.opts.url.trim_end_matches('/'), path);
        let mut req = self.http.request(method, &url);
        if let Some(user) = &self.opts.user {
            let (u, p) = user.split_once(':').unwrap_or((user.as_str(), ""));
            req = req.basic_auth(u, Some(p));
        }
        if let Some(token) = &self.opts.token {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| ClientError::Unreachable(format!("cannot reach the worker at {}: {e}", self.opts.url)))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let json: Value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if status >= 400 {
            let message = json.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| json.to_string());
            return Err(ClientError::Api(status, message));
        }
        Ok((status, json))
    }
    async fn get(&self, path: &str) -> Result<Value, ClientError> {
        Ok(self.call(reqwest::Method::GET, path, None).await?.1)
    }
    /// The worker's own health line (`/health`: 500 when Kafka is unreachable, 503 while starting), so a
    /// table of healthy connectors never hides a worker that cannot reach its cluster.
    async fn worker_health(&self) -> String {
        match self.call(reqwest::Method::GET, "/health", None).await {
            Ok((_, v)) => format!("worker: {}", v["status"].as_str().unwrap_or("healthy")),
            Err(ClientError::Api(code, message)) => {
                let state = if code == 503 { "starting" } else { "unhealthy" };
                format!("worker: {state} ({message})")
            }
            Err(ClientError::Unreachable(message) | ClientError::Input(message)) => format!("worker: unknown ({message})"),
        }
    }
}

/// Run a client subcommand; returns the process exit code.
pub async fn run(opts: ClientOptions, command: ClientCommand) -> i32 {
    let result = match opts.http_client() {
        Ok(http) => execute(&Client { http, opts }, command).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(code) => code,
        Err(ClientError::Unreachable(m)) => {
            eprintln!("error: {m}");
            EXIT_UNREACHABLE
        }
        Err(ClientError::Api(status, m)) => {
            eprintln!("error ({status}): {m}");
            EXIT_API_ERROR
        }
        Err(ClientError::Input(m)) => {
            eprintln!("error: {m}");
            EXIT_API_ERROR
        }
    }
}

/// A connector config file: JSON in either shape, or `.properties`; returns (name, config).
fn read_connector_file(file: &Path) -> Result<(String, Value), ClientError> {
    let config = crate::config::read_config_file(file).map_err(|e| ClientError::Input(e.to_string()))?;
    let name = config.get("name").cloned().ok_or_else(|| ClientError::Input(format!("{}: the config has no name", file.display())))?;
    Ok((name, serde_json::to_value(config).unwrap_or_default()))
}

fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn execute(c: &Client, command: ClientCommand) -> Result<i32, ClientError> {
    use reqwest::Method;
    let out = |v: &Value| println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    match command {
        ClientCommand::List => {
            let all = c.get("/connectors?expand=status").await?;
            if c.opts.json {
                out(&all);
            } else {
                println!("{}", c.worker_health().await);
                print_connector_table(&all);
            }
        }
        ClientCommand::Status { name: Some(name) } => {
            let s = c.get(&format!("/connectors/{}/status", encode(&name))).await?;
            if c.opts.json {
                out(&s);
            } else {
                println!("{}", c.worker_health().await);
                print_status(&s);
            }
        }
        ClientCommand::Status { name: None } => {
            let all = c.get("/connectors?expand=status").await?;
            if c.opts.json {
                out(&all);
            } else {
                println!("{}", c.worker_health().await);
                for (_, v) in all.as_object().into_iter().flatten() {
                    print_status(&v["status"]);
                    println!();
                }
            }
        }
        ClientCommand::Create { file } => {
            let (name, config) = read_connector_file(&file)?;
            let (_, info) = c.call(Method::POST, "/connectors", Some(&json!({"name": name, "config": config}))).await?;
            if c.opts.json {
                out(&info)
            } else {
                println!("created connector {name}")
            }
        }
        ClientCommand::Update { file } => {
            let (name, config) = read_connector_file(&file)?;
            let (status, info) = c.call(Method::PUT, &format!("/connectors/{}/config", encode(&name)), Some(&config)).await?;
            if c.opts.json {
                out(&info)
            } else {
                println!("{} connector {name}", if status == 201 { "created" } else { "updated" })
            }
        }
        ClientCommand::Delete { name } => {
            c.call(Method::DELETE, &format!("/connectors/{}", encode(&name)), None).await?;
            println!("deleted connector {name}");
        }
        ClientCommand::Pause { name } => {
            c.call(Method::PUT, &format!("/connectors/{}/pause", encode(&name)), None).await?;
            println!("pausing connector {name}");
        }
        ClientCommand::Resume { name } => {
            c.call(Method::PUT, &format!("/connectors/{}/resume", encode(&name)), None).await?;
            println!("resuming connector {name}");
        }
        ClientCommand::Stop { name } => {
            c.call(Method::PUT, &format!("/connectors/{}/stop", encode(&name)), None).await?;
            println!("stopped connector {name}");
        }
        ClientCommand::Restart { name, task: Some(task), .. } => {
            c.call(Method::POST, &format!("/connectors/{}/tasks/{task}/restart", encode(&name)), None).await?;
            println!("restarted task {name}/{task}");
        }
        ClientCommand::Restart { name, task: None, include_tasks, only_failed } => {
            let path = format!("/connectors/{}/restart?includeTasks={include_tasks}&onlyFailed={only_failed}", encode(&name));
            let (_, body) = c.call(Method::POST, &path, None).await?;
            if c.opts.json && !body.is_null() {
                out(&body)
            } else {
                println!("restarting connector {name}")
            }
        }
        ClientCommand::RestartFailed => {
            // What cron jobs do today: every FAILED connector and task of every connector, in one go.
            let all = c.get("/connectors?expand=status").await?;
            let mut restarted = Vec::new();
            for (name, v) in all.as_object().into_iter().flatten() {
                let status = &v["status"];
                let connector_failed = status["connector"]["state"] == "FAILED";
                let failed_tasks: Vec<u64> = status["tasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|t| t["state"] == "FAILED")
                    .filter_map(|t| t["id"].as_u64())
                    .collect();
                if connector_failed {
                    c.call(Method::POST, &format!("/connectors/{}/restart?includeTasks=true&onlyFailed=true", encode(name)), None).await?;
                    restarted.push(json!({"connector": name, "tasks": failed_tasks}));
                } else {
                    for t in &failed_tasks {
                        c.call(Method::POST, &format!("/connectors/{}/tasks/{t}/restart", encode(name)), None).await?;
                    }
                    if !failed_tasks.is_empty() {
                        restarted.push(json!({"connector": name, "tasks": failed_tasks}));
                    }
                }
            }
            if c.opts.json {
                out(&Value::Array(restarted));
            } else if restarted.is_empty() {
                println!("nothing has failed");
            } else {
                for r in &restarted {
                    println!("restarted {} tasks {}", r["connector"].as_str().unwrap_or(""), r["tasks"]);
                }
            }
        }
        ClientCommand::Validate { file } => {
            let (_, config) = read_connector_file(&file)?;
            let class = config
                .get("connector.class")
                .and_then(Value::as_str)
                .ok_or_else(|| ClientError::Input("the config has no connector.class".into()))?;
            let (_, infos) = c.call(Method::PUT, &format!("/connector-plugins/{}/config/validate", encode(class)), Some(&config)).await?;
            let count = infos["error_count"].as_u64().unwrap_or(0);
            if c.opts.json {
                out(&infos);
            } else if count == 0 {
                println!("valid: no errors");
            } else {
                println!("{count} error(s):");
                for cfg in infos["configs"].as_array().into_iter().flatten() {
                    for e in cfg["value"]["errors"].as_array().into_iter().flatten() {
                        println!("  {}: {}", cfg["value"]["name"].as_str().unwrap_or(""), e.as_str().unwrap_or(""));
                    }
                }
            }
            return Ok(if count == 0 { EXIT_OK } else { EXIT_API_ERROR });
        }
        ClientCommand::OffsetsGet { name } => out(&c.get(&format!("/connectors/{}/offsets", encode(&name))).await?),
        ClientCommand::OffsetsAlter { name, file } => {
            let text = std::fs::read_to_string(&file).map_err(|e| ClientError::Input(format!("{}: {e}", file.display())))?;
            let body: Value = serde_json::from_str(&text).map_err(|e| ClientError::Input(format!("{}: {e}", file.display())))?;
            let (_, msg) = c.call(Method::PATCH, &format!("/connectors/{}/offsets", encode(&name)), Some(&body)).await?;
            println!("{}", msg["message"].as_str().unwrap_or("done"));
        }
        ClientCommand::OffsetsReset { name } => {
            let (_, msg) = c.call(Method::DELETE, &format!("/connectors/{}/offsets", encode(&name)), None).await?;
            println!("{}", msg["message"].as_str().unwrap_or("done"));
        }
        ClientCommand::Plugins { all } => {
            let plugins = c.get(&format!("/connector-plugins?connectorsOnly={}", !all)).await?;
            if c.opts.json {
                out(&plugins);
            } else {
                println!("{:<16} {:<10} CLASS", "TYPE", "VERSION");
                for p in plugins.as_array().into_iter().flatten() {
                    println!(
                        "{:<16} {:<10} {}",
                        p["type"].as_str().unwrap_or(""),
                        p["version"].as_str().unwrap_or(""),
                        p["class"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(EXIT_OK)
}

fn print_connector_table(all: &Value) {
    println!("{:<32} {:<6} {:<11} {:<7} HEALTH", "NAME", "TYPE", "STATE", "TASKS");
    for (name, v) in all.as_object().into_iter().flatten() {
        let s = &v["status"];
        let tasks = s["tasks"].as_array().map(Vec::as_slice).unwrap_or_default();
        let running = tasks.iter().filter(|t| t["state"] == "RUNNING").count();
        println!(
            "{:<32} {:<6} {:<11} {:<7} {}",
            name,
            s["type"].as_str().unwrap_or(""),
            s["connector"]["state"].as_str().unwrap_or(""),
            format!("{running}/{}", tasks.len()),
            s["connector"]["health"].as_str().unwrap_or("")
        );
    }
}

fn print_status(s: &Value) {
    println!(
        "connector {} ({}): {} on {}",
        s["name"].as_str().unwrap_or(""),
        s["type"].as_str().unwrap_or(""),
        s["connector"]["state"].as_str().unwrap_or(""),
        s["connector"]["worker_id"].as_str().unwrap_or("")
    );
    if let Some(trace) = s["connector"]["trace"].as_str() {
        println!("  trace: {}", trace.lines().next().unwrap_or(""));
    }
    println!("  {:<5} {:<11} {:<9} TRACE", "TASK", "STATE", "RESTARTS");
    for t in s["tasks"].as_array().into_iter().flatten() {
        println!(
            "  {:<5} {:<11} {:<9} {}",
            // A JSON value's Display ignores widths: print the number itself so the columns line up.
            t["id"].as_u64().unwrap_or(0),
            t["state"].as_str().unwrap_or(""),
            t["restart_count"].as_u64().unwrap_or(0),
            t["trace"].as_str().and_then(|tr| tr.lines().next()).unwrap_or("")
        );
    }
}
