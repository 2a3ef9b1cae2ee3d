//! The `connect` command: a thin shell over connect-worker. `connect standalone` runs a worker; the other
//! subcommands are a client for a worker's REST API (exit codes: 0 ok, 1 API error, 2 usage, 3 unreachable).

use clap::{Parser, Subcommand, ValueEnum};
use connect_worker::cli::{ClientCommand, ClientOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc 3's `mi_option_e` (libmimalloc-sys names no constant for it).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Commit arena memory as it is used, not up front: an idle worker stays at ~13 MiB instead of ~23 MiB. It
/// must be set before mimalloc reserves its first arena, i.e. before the first allocation, hence a
/// constructor rather than a line in `main` (the same as `MIMALLOC_ARENA_EAGER_COMMIT=0` in the environment).
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static MIMALLOC_OPTIONS: extern "C" fn() = {
    extern "C" fn set_options() {
        // SAFETY: runs once, before main and before any other thread exists.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
    }
    set_options
};

#[derive(Parser)]
#[command(name = "connect", version, about = "connect-rs: a Kafka Connect-compatible connector worker")]
struct Cli {
    /// The worker's REST URL (client subcommands).
    #[arg(long, global = true, env = "CONNECT_URL", default_value = "http://127.0.0.1:8083")]
    url: String,
    /// HTTP basic credentials, user:password.
    #[arg(long, global = true, env = "CONNECT_USER")]
    user: Option<String>,
    /// Bearer token.
    #[arg(long, global = true, env = "CONNECT_TOKEN")]
    token: Option<String>,
    /// PEM CA certificate(s) to trust for an https --url (instead of the system's roots).
    #[arg(long, global = true, env = "CONNECT_CACERT")]
    cacert: Option<PathBuf>,
    /// PEM client certificate, for a worker with ssl.client.auth=required (with --key).
    #[arg(long, global = true, env = "CONNECT_CERT", requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, global = true, env = "CONNECT_KEY", requires = "cert")]
    key: Option<PathBuf>,
    /// Output format of client subcommands.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a standalone worker, like connect-standalone.sh: WORKER_CONFIG [CONNECTOR_CONFIG ...]
    Standalone {
        /// Worker config (.properties or JSON)
        worker_config: PathBuf,
        /// Connector configs (.properties or JSON) to create or update at start
        connector_configs: Vec<PathBuf>,
    },
    /// Run a distributed worker, like connect-distributed.sh: WORKER_CONFIG (group.id and the three
    /// storage topics); workers with the same group.id share their connectors
    Distributed {
        /// Worker config (.properties or JSON)
        worker_config: PathBuf,
    },
    /// List connectors with their state
    List,
    /// Status of one connector, or of all
    Status { name: Option<String> },
    /// Create a connector from a config file (JSON in either shape, or .properties)
    Create { file: PathBuf },
    /// Create or update a connector from a config file
    Update { file: PathBuf },
    /// Delete a connector
    Delete { name: String },
    /// Pause a connector
    Pause { name: String },
    /// Resume a paused or stopped connector
    Resume { name: String },
    /// Stop a connector (its tasks shut down; offsets become editable)
    Stop { name: String },
    /// Restart a connector, or one task with --task
    Restart {
        name: String,
        #[arg(long)]
        task: Option<u32>,
        #[arg(long)]
        include_tasks: bool,
        #[arg(long)]
        only_failed: bool,
    },
    /// Restart every FAILED connector and task of every connector (what cron jobs do)
    RestartFailed,
    /// Validate a connector config file; lists errors per key, exit 1 when there are any
    Validate { file: PathBuf },
    /// Read, alter or reset a connector's offsets
    Offsets {
        #[command(subcommand)]
        action: OffsetsAction,
    },
    /// List installed plugins (--all: converters, transforms and predicates too), or with --docs DIR write
    /// the plugin reference (a Markdown page per connector, from its config definition) into DIR
    Plugins {
        #[arg(long)]
        all: bool,
        /// Write the plugin reference into DIR (the repository's is docs/connectors) instead of asking a worker
        #[arg(long, value_name = "DIR")]
        docs: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum OffsetsAction {
    Get {
        name: String,
    },
    /// Alter from a JSON file: {"offsets":[{"partition":{...},"offset":{...}}]}
    Alter {
        name: String,
        file: PathBuf,
    },
    Reset {
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = |command: ClientCommand| -> ExitCode {
        let opts = ClientOptions {
            url: cli.url.clone(),
            user: cli.user.clone(),
            token: cli.token.clone(),
            json: cli.output == Output::Json,
            cacert: cli.cacert.clone(),
            cert: cli.cert.clone(),
            key: cli.key.clone(),
        };
        ExitCode::from(runtime.block_on(connect_worker::cli::run(opts, command)) as u8)
    };
    match cli.command {
        Command::Standalone { ref worker_config, ref connector_configs } => {
            init_worker_logging(worker_config);
            worker_exit(runtime.block_on(connect_worker::standalone::run(worker_config.clone(), connector_configs.clone())))
        }
        Command::Distributed { ref worker_config } => {
            init_worker_logging(worker_config);
            worker_exit(runtime.block_on(connect_worker::distributed::run(worker_config.clone())))
        }
        Command::List => client(ClientCommand::List),
        Command::Status { ref name } => client(ClientCommand::Status { name: name.clone() }),
        Command::Create { ref file } => client(ClientCommand::Create { file: file.clone() }),
        Command::Update { ref file } => client(ClientCommand::Update { file: file.clone() }),
        Command::Delete { ref name } => client(ClientCommand::Delete { name: name.clone() }),
        Command::Pause { ref name } => client(ClientCommand::Pause { name: name.clone() }),
        Command::Resume { ref name } => client(ClientCommand::Resume { name: name.clone() }),
        Command::Stop { ref name } => client(ClientCommand::Stop { name: name.clone() }),
        Command::Restart { ref name, task, include_tasks, only_failed } => {
            client(ClientCommand::Restart { name: name.clone(), task, include_tasks, only_failed })
        }
        Command::RestartFailed => client(ClientCommand::RestartFailed),
        Command::Validate { ref file } => client(ClientCommand::Validate { file: file.clone() }),
        Command::Offsets { ref action } => client(match action {
            OffsetsAction::Get { name } => ClientCommand::OffsetsGet { name: name.clone() },
            OffsetsAction::Alter { name, file } => ClientCommand::OffsetsAlter { name: name.clone(), file: file.clone() },
            OffsetsAction::Reset { name } => ClientCommand::OffsetsReset { name: name.clone() },
        }),
        Command::Plugins { docs: Some(ref dir), .. } => {
            match connect_worker::docs::write(&connect_worker::registry::Registry::default(), dir) {
                Ok(files) => {
                    files.iter().for_each(|f| println!("{}", f.display()));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: cannot write the plugin reference into {}: {e}", dir.display());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Plugins { all, docs: None } => client(ClientCommand::Plugins { all }),
    }
}

/// Logging for a worker: log.format from the worker config (or CONNECT_LOG_FORMAT), read before anything logs.
fn init_worker_logging(worker_config: &std::path::Path) {
    let requested = std::env::var("CONNECT_LOG_FORMAT")
        .ok()
        .or_else(|| connect_worker::config::read_config_file(worker_config).ok().and_then(|c| c.get("log.format").cloned()));
    let format = requested.as_deref().map(connect_worker::logging::LogFormat::parse);
    connect_worker::logging::init(format.flatten().unwrap_or_default());
    if let (Some(value), Some(None)) = (&requested, format) {
        tracing::warn!(value, "log.format must be text or json; logging as text");
    }
}

fn worker_exit(result: Result<(), connect_worker::standalone::StartupError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "worker failed");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
