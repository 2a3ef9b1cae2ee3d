//! Reporting a record the target refused: to the errant-record reporter (the DLQ, or a task failure with
//! `errors.tolerance=none`), or, without one, as the task's data error.

use connect_core::{ConnectError, ErrantRecordReporter, Result, SinkRecord};
use std::sync::Arc;

/// Report `record` with `message` as a data error. Without a reporter the error is returned: the task fails.
pub async fn report(reporter: Option<&Arc<dyn ErrantRecordReporter>>, record: &SinkRecord, message: String) -> Result<()> {
    let error = ConnectError::data(message);
    match reporter {
        Some(reporter) => reporter.report(record, &error).await,
        None => Err(error),
    }
}
