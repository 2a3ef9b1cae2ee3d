//! What a failed write means: the rows' fault (bisect and report them) or the database's (retry the batch).

use connect_core::{ConnectError, ErrorKind};

/// Why a write failed: the rows (split and report them), or the database (retry the batch).
pub(crate) enum WriteError {
    Rows(String),
    Database(ConnectError),
    /// Rows that were to be written by one statement need two (binary and text COPY): nothing was written,
    /// write them in a transaction.
    NeedsTransaction,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Rows(m) => write!(f, "{m}"),
            WriteError::Database(e) => write!(f, "{e}"),
            WriteError::NeedsTransaction => write!(f, "rows needed a transaction"),
        }
    }
}

/// PostgreSQL's own message with its detail, hint and context (COPY says which line and column).
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
            if let Some(d) = db.detail() {
                m.push_str(&format!("; DETAIL: {d}"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; HINT: {h}"));
            }
            if let Some(w) = db.where_() {
                m.push_str(&format!("; WHERE: {w}"));
            }
            m
        }
        None => {
            // The driver's message alone can be as thin as "error performing TLS handshake": add the causes.
            let mut m = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                m.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            m
        }
    }
}

/// Errors of the connection or the server as a whole (retry), versus errors caused by the rows.
pub(crate) fn classify(e: tokio_postgres::Error) -> WriteError {
    let message = describe(&e);
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let server_side = ["08", "53", "57", "58", "40"].iter().any(|class| code.starts_with(class));
            if server_side {
                WriteError::Database(ConnectError::retriable(format!("PostgreSQL: {message}")))
            } else {
                WriteError::Rows(message)
            }
        }
        None => WriteError::Database(ConnectError::retriable(format!("PostgreSQL connection: {message}"))),
    }
}

impl WriteError {
    /// As a task error, where no rows can be split off: row errors are fatal there.
    pub(crate) fn into_connect(self) -> ConnectError {
        match self {
            WriteError::Database(e) => e,
            WriteError::Rows(m) => ConnectError::fatal(format!("PostgreSQL: {m}")),
            WriteError::NeedsTransaction => ConnectError::fatal("PostgreSQL: rows needed a transaction"),
        }
    }

    /// For the kit's bisection: row errors are the data's fault, everything else stops the search.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            WriteError::Rows(_) => ErrorKind::Data,
            WriteError::Database(e) => e.kind(),
            WriteError::NeedsTransaction => ErrorKind::Fatal,
        }
    }
}

pub(crate) fn db_error(e: tokio_postgres::Error) -> ConnectError {
    classify(e).into_connect()
}
