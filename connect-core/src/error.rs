//! Errors that carry the decision the runtime has to make about them.

use std::fmt;

/// What the runtime does with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A transient condition (a broker or target that is down, a timeout): retry with backoff.
    Retriable,
    /// A bad record (unparsable, wrong shape, rejected by the target): `errors.tolerance` and the DLQ decide.
    Data,
    /// Anything else: the task fails.
    Fatal,
}

impl ErrorKind {
    /// The Java exception class Kafka Connect would have thrown, for DLQ headers and traces.
    pub fn java_class(self) -> &'static str {
        match self {
            ErrorKind::Retriable => "org.apache.kafka.connect.errors.RetriableException",
            ErrorKind::Data => "org.apache.kafka.connect.errors.DataException",
            ErrorKind::Fatal => "org.apache.kafka.connect.errors.ConnectException",
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The one error type of the plugin API.
///
/// It keeps its cause chain so a FAILED task's trace and a DLQ header can show the whole story
/// (our equivalent of a Java stack trace).
#[derive(Debug, thiserror::Error)]
pub struct ConnectError {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

/// Result alias used throughout the plugin API.
pub type Result<T, E = ConnectError> = std::result::Result<T, E>;

impl ConnectError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None }
    }
    pub fn retriable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Retriable, message)
    }
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Data, message)
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Fatal, message)
    }
    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn is_retriable(&self) -> bool {
        self.kind == ErrorKind::Retriable
    }
    /// Add context in front of the message, keeping kind and cause.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The message followed by every cause, one per line ("Caused by: ..."), like a Java trace.
    pub fn chain(&self) -> String {
        let mut out = format!("{}: {}", self.kind.java_class(), self.message);
        let mut cause: Option<&(dyn std::error::Error + 'static)> = self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(err) = cause {
            out.push_str("\nCaused by: ");
            out.push_str(&err.to_string());
            cause = err.source();
        }
        out
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl From<std::io::Error> for ConnectError {
    /// I/O errors are fatal unless they are the transient kinds a retry can fix.
    fn from(err: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match err.kind() {
            Io::TimedOut
            | Io::Interrupted
            | Io::WouldBlock
            | Io::ConnectionRefused
            | Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::BrokenPipe
            | Io::NotConnected => ErrorKind::Retriable,
            _ => ErrorKind::Fatal,
        };
        ConnectError::new(kind, "I/O error").with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_lists_every_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = ConnectError::fatal("cannot open /x").with_source(io);
        assert_eq!(err.chain(), "org.apache.kafka.connect.errors.ConnectException: cannot open /x\nCaused by: no such file");
        assert_eq!(err.to_string(), "cannot open /x: no such file");
    }

    #[test]
    fn io_timeouts_are_retriable() {
        let err: ConnectError = std::io::Error::new(std::io::ErrorKind::TimedOut, "t").into();
        assert!(err.is_retriable());
        let err: ConnectError = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "p").into();
        assert_eq!(err.kind(), ErrorKind::Fatal);
    }
}
