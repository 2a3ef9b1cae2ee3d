//! `_bulk` requests as NDJSON, and their answers read item by item.

use crate::config::WriteMethod;
use crate::document::Action;
use std::io::Write;

/// The error types Elasticsearch gives a document it cannot take (Confluent's "malformed" list, plus what
/// ES 8 calls a parse failure now).
const MALFORMED_TYPES: &[&str] = &[
    "mapper_parsing_exception",
    "document_parsing_exception",
    "illegal_argument_exception",
    "action_request_validation_exception",
    "strict_dynamic_mapping_exception",
];

/// Appends one action (and its source) to an NDJSON body.
///
/// Upserts carry `retry_on_conflict` (as Confluent's connector: `min(max.in.flight.requests, 5)`), so two
/// updates of one document in requests in flight together do not fail each other.
pub fn append(body: &mut Vec<u8>, action: &Action, write_method: WriteMethod, data_stream: bool, retry_on_conflict: usize) {
    let write_meta = |body: &mut Vec<u8>, op: &str, target: &str, id: Option<&str>, version: Option<i64>| {
        body.extend_from_slice(b"{\"");
        body.extend_from_slice(op.as_bytes());
        body.extend_from_slice(b"\":{\"_index\":");
        serde_json::to_writer(&mut *body, target).expect("a Vec");
        if let Some(id) = id {
            body.extend_from_slice(b",\"_id\":");
            serde_json::to_writer(&mut *body, id).expect("a Vec");
        }
        if let Some(v) = version {
            write!(body, ",\"version\":{v},\"version_type\":\"external\"").expect("a Vec");
        }
        if op == "update" {
            write!(body, ",\"retry_on_conflict\":{retry_on_conflict}").expect("a Vec");
        }
        body.extend_from_slice(b"}}\n");
    };
    match action {
        Action::Write { target, id, version, source } => {
            if data_stream {
                write_meta(body, "create", target, id.as_deref(), None);
                body.extend_from_slice(source);
            } else if write_method == WriteMethod::Upsert && id.is_some() {
                write_meta(body, "update", target, id.as_deref(), None);
                body.extend_from_slice(b"{\"doc\":");
                body.extend_from_slice(source);
                body.extend_from_slice(b",\"doc_as_upsert\":true}");
            } else {
                write_meta(body, "index", target, id.as_deref(), *version);
                body.extend_from_slice(source);
            }
            body.push(b'\n');
        }
        Action::Delete { target, id, version } => write_meta(body, "delete", target, Some(id), *version),
    }
}

/// What became of one document.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    /// Written, deleted, already deleted, or already there in this or a newer version (a replay).
    Done,
    /// The cluster's condition (429, 5xx): try again later.
    Retry(String),
    /// The document itself was refused; `malformed` says whether it is one of the mapping/parse errors
    /// `behavior.on.malformed.documents` is about.
    Refused { reason: String, malformed: bool },
}

/// Reads a `_bulk` answer: one outcome per action, in order. `Err` when the answer is not a bulk response.
pub fn outcomes(body: &[u8], expected: usize, versioned: &[bool]) -> Result<Vec<ItemOutcome>, String> {
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("not a _bulk answer ({e})"))?;
    let items = json.get("items").and_then(|i| i.as_array()).ok_or("a _bulk answer without items")?;
    if items.len() != expected {
        return Err(format!("a _bulk answer with {} items for {expected} actions", items.len()));
    }
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let (op, result) = item.as_object().and_then(|o| o.iter().next()).map(|(k, v)| (k.as_str(), v)).unwrap_or(("?", item));
            let status = result.get("status").and_then(|s| s.as_u64()).unwrap_or(0);
            let error = result.get("error");
            let kind = error.and_then(|e| e.get("type")).and_then(|t| t.as_str()).unwrap_or_default();
            match status {
                200..=299 => ItemOutcome::Done,
                // Deleting what is not there is done.
                404 if op == "delete" => ItemOutcome::Done,
                // A replay of a version the cluster has (or has newer): done, when we set the version ourselves.
                409 if kind == "version_conflict_engine_exception" && versioned.get(i).copied().unwrap_or(false) => ItemOutcome::Done,
                // An update that lost a race with another update of the same document: try it again.
                409 if op == "update" => ItemOutcome::Retry(describe(status, error)),
                429 | 500..=599 => ItemOutcome::Retry(describe(status, error)),
                _ => ItemOutcome::Refused { reason: describe(status, error), malformed: MALFORMED_TYPES.contains(&kind) },
            }
        })
        .collect())
}

/// `400 document_parsing_exception: [1:6] failed to parse field [x] ... (caused by illegal_argument_exception: ...)`.
fn describe(status: u64, error: Option<&serde_json::Value>) -> String {
    let Some(error) = error else { return format!("status {status}") };
    let part = |e: &serde_json::Value| {
        let kind = e.get("type").and_then(|t| t.as_str()).unwrap_or("error");
        let reason = e.get("reason").and_then(|r| r.as_str()).unwrap_or_default();
        format!("{kind}: {reason}")
    };
    match error.get("caused_by") {
        Some(cause) => format!("{status} {} (caused by {})", part(error), part(cause)),
        None if error.is_object() => format!("{status} {}", part(error)),
        None => format!("{status} {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_lines() {
        let mut body = Vec::new();
        let write = Action::Write { target: "t".into(), id: Some("a\"1".into()), version: Some(7), source: br#"{"x":1}"#.to_vec() };
        append(&mut body, &write, WriteMethod::Insert, false, 5);
        append(&mut body, &Action::Delete { target: "t".into(), id: "b".into(), version: Some(8) }, WriteMethod::Insert, false, 5);
        append(&mut body, &write, WriteMethod::Upsert, false, 5);
        append(&mut body, &write, WriteMethod::Insert, true, 5);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            concat!(
                "{\"index\":{\"_index\":\"t\",\"_id\":\"a\\\"1\",\"version\":7,\"version_type\":\"external\"}}\n{\"x\":1}\n",
                "{\"delete\":{\"_index\":\"t\",\"_id\":\"b\",\"version\":8,\"version_type\":\"external\"}}\n",
                "{\"update\":{\"_index\":\"t\",\"_id\":\"a\\\"1\",\"retry_on_conflict\":5}}\n{\"doc\":{\"x\":1},\"doc_as_upsert\":true}\n",
                "{\"create\":{\"_index\":\"t\",\"_id\":\"a\\\"1\"}}\n{\"x\":1}\n",
            )
        );
    }

    #[test]
    fn items_are_read_one_by_one() {
        // An answer as noida-db (Elasticsearch 8.15 API) gives it.
        let answer = br#"{"errors":true,"items":[
            {"index":{"_index":"t1","_id":"a","_version":5,"result":"created","status":201}},
            {"index":{"error":{"type":"version_conflict_engine_exception","reason":"[a]: version conflict"},"_index":"t1","_id":"a","status":409}},
            {"index":{"error":{"type":"document_parsing_exception","reason":"[1:6] failed to parse field [x] of type [long]","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"notanumber\""}},"_index":"t1","_id":"b","status":400}},
            {"delete":{"_index":"t1","_id":"zz","result":"not_found","status":404}},
            {"index":{"error":{"type":"es_rejected_execution_exception","reason":"queue full"},"status":429}}
        ],"took":0}"#;
        let got = outcomes(answer, 5, &[true; 5]).unwrap();
        assert_eq!(got[0], ItemOutcome::Done);
        assert_eq!(got[1], ItemOutcome::Done);
        let ItemOutcome::Refused { reason, malformed } = &got[2] else { panic!("{:?}", got[2]) };
        assert!(*malformed && reason.contains("failed to parse field [x]") && reason.contains("notanumber"), "{reason}");
        assert_eq!(got[3], ItemOutcome::Done);
        assert!(matches!(&got[4], ItemOutcome::Retry(r) if r.contains("queue full")));
        // Without our own version, a conflict is a refusal.
        assert!(matches!(outcomes(answer, 5, &[false; 5]).unwrap()[1], ItemOutcome::Refused { malformed: false, .. }));
        assert!(outcomes(answer, 4, &[]).is_err());
        assert!(outcomes(b"<html>", 1, &[]).is_err());
    }
}
