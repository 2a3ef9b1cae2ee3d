//! Kafka Connect's "connect" group protocol: the member metadata a worker sends in JoinGroup and the
//! assignment the leader hands out in SyncGroup, byte for byte as `ConnectProtocol` (v0) and
//! `IncrementalCooperativeConnectProtocol` (v1, "compatible") encode them.
//!
//! Written by hand: these schemas live in Kafka Connect's runtime, not in Kafka's message JSON, so the
//! `kafka-protocol` crate (which speaks the group requests themselves) has no codec for them.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::BTreeMap;

/// The protocol name and metadata version connect-rs offers: incremental cooperative, without sessioned
/// (HMAC-signed) internal requests.
pub const PROTOCOL_COMPATIBLE: &str = "compatible";
pub const VERSION_COMPATIBLE: i16 = 1;
/// Kafka Connect's task id for the connector instance itself.
pub const CONNECTOR_TASK: i32 = -1;
/// `Assignment.NO_ERROR` / `CONFIG_MISMATCH`.
pub const NO_ERROR: i16 = 0;
pub const CONFIG_MISMATCH: i16 = 1;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtocolError {
    #[error("truncated connect protocol message")]
    Truncated,
    #[error("connect protocol version {0} is not supported")]
    Version(i16),
    #[error("connect protocol string is not UTF-8")]
    Utf8,
}

/// What each worker owns, by connector: connector ids (the connector instance) and task ids.
/// Task [`CONNECTOR_TASK`] is the connector itself.
pub type Allocation = BTreeMap<String, Vec<i32>>;

/// JoinGroup metadata: where the worker's REST API is, how far it has read the config topic, and what
/// it runs now (v1).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkerMetadata {
    pub url: String,
    pub config_offset: i64,
    pub allocation: Option<Allocation>,
}

/// SyncGroup assignment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Assignment {
    pub error: i16,
    pub leader: String,
    pub leader_url: String,
    pub config_offset: i64,
    /// Newly assigned (v1: in addition to what the worker runs).
    pub assigned: Allocation,
    /// To stop (v1 only).
    pub revoked: Allocation,
    /// Rejoin after this many milliseconds (v1 only): work held back for a departed worker.
    pub delay_ms: i32,
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn get_string(buf: &mut Bytes) -> Result<String, ProtocolError> {
    if buf.remaining() < 2 {
        return Err(ProtocolError::Truncated);
    }
    let len = buf.get_i16();
    if len < 0 || buf.remaining() < len as usize {
        return Err(ProtocolError::Truncated);
    }
    String::from_utf8(buf.split_to(len as usize).to_vec()).map_err(|_| ProtocolError::Utf8)
}

fn get_i16(buf: &mut Bytes) -> Result<i16, ProtocolError> {
    (buf.remaining() >= 2).then(|| buf.get_i16()).ok_or(ProtocolError::Truncated)
}

fn get_i32(buf: &mut Bytes) -> Result<i32, ProtocolError> {
    (buf.remaining() >= 4).then(|| buf.get_i32()).ok_or(ProtocolError::Truncated)
}

fn get_i64(buf: &mut Bytes) -> Result<i64, ProtocolError> {
    (buf.remaining() >= 8).then(|| buf.get_i64()).ok_or(ProtocolError::Truncated)
}

/// `[{connector: STRING, tasks: [INT32]}]`; `None` is a null array (count -1).
fn put_allocation(buf: &mut BytesMut, allocation: Option<&Allocation>) {
    let Some(allocation) = allocation else {
        buf.put_i32(-1);
        return;
    };
    buf.put_i32(allocation.len() as i32);
    for (connector, tasks) in allocation {
        put_string(buf, connector);
        buf.put_i32(tasks.len() as i32);
        for t in tasks {
            buf.put_i32(*t);
        }
    }
}

fn get_allocation(buf: &mut Bytes) -> Result<Allocation, ProtocolError> {
    let count = get_i32(buf)?;
    let mut allocation = Allocation::new();
    for _ in 0..count.max(0) {
        let connector = get_string(buf)?;
        let tasks = get_i32(buf)?;
        let entry: &mut Vec<i32> = allocation.entry(connector).or_default();
        for _ in 0..tasks.max(0) {
            entry.push(get_i32(buf)?);
        }
    }
    Ok(allocation)
}

impl WorkerMetadata {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(VERSION_COMPATIBLE);
        put_string(&mut buf, &self.url);
        buf.put_i64(self.config_offset);
        match &self.allocation {
            None => buf.put_i32(-1),
            Some(allocation) => {
                // NULLABLE_BYTES holding a v1 assignment that lists what the worker runs.
                let owned = Assignment { assigned: allocation.clone(), ..Default::default() }.encode();
                buf.put_i32(owned.len() as i32);
                buf.put_slice(&owned);
            }
        }
        buf.freeze()
    }

    pub fn decode(mut buf: Bytes) -> Result<Self, ProtocolError> {
        let version = get_i16(&mut buf)?;
        let url = get_string(&mut buf)?;
        let config_offset = get_i64(&mut buf)?;
        let allocation = match version {
            0 => None,
            v if v >= 1 => match get_i32(&mut buf)? {
                len if len < 0 => None,
                len if buf.remaining() < len as usize => return Err(ProtocolError::Truncated),
                len => Some(Assignment::decode(buf.split_to(len as usize))?.assigned),
            },
            v => return Err(ProtocolError::Version(v)),
        };
        Ok(WorkerMetadata { url, config_offset, allocation })
    }
}

impl Assignment {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(VERSION_COMPATIBLE);
        buf.put_i16(self.error);
        put_string(&mut buf, &self.leader);
        put_string(&mut buf, &self.leader_url);
        buf.put_i64(self.config_offset);
        put_allocation(&mut buf, Some(&self.assigned));
        put_allocation(&mut buf, Some(&self.revoked));
        buf.put_i32(self.delay_ms);
        buf.freeze()
    }

    pub fn decode(mut buf: Bytes) -> Result<Self, ProtocolError> {
        let version = get_i16(&mut buf)?;
        if version < 0 {
            return Err(ProtocolError::Version(version));
        }
        let error = get_i16(&mut buf)?;
        let leader = get_string(&mut buf)?;
        let leader_url = get_string(&mut buf)?;
        let config_offset = get_i64(&mut buf)?;
        let assigned = get_allocation(&mut buf)?;
        let (revoked, delay_ms) = if version >= 1 { (get_allocation(&mut buf)?, get_i32(&mut buf)?) } else { (Allocation::new(), 0) };
        Ok(Assignment { error, leader, leader_url, config_offset, assigned, revoked, delay_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocation(pairs: &[(&str, &[i32])]) -> Allocation {
        pairs.iter().map(|(c, t)| (c.to_string(), t.to_vec())).collect()
    }

    #[test]
    fn metadata_round_trips_with_and_without_allocation() {
        for allocation in [None, Some(allocation(&[("a", &[-1, 0, 1]), ("b", &[-1])]))] {
            let m = WorkerMetadata { url: "http://127.0.0.1:8083/".into(), config_offset: 42, allocation };
            assert_eq!(WorkerMetadata::decode(m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn metadata_v0_as_java_writes_it() {
        // ConnectProtocol.serializeMetadata: version 0, url "u", offset 7.
        let bytes = Bytes::from_static(&[0, 0, 0, 1, b'u', 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(WorkerMetadata::decode(bytes).unwrap(), WorkerMetadata { url: "u".into(), config_offset: 7, allocation: None });
    }

    #[test]
    fn assignment_bytes_match_kafka_connect() {
        let a = Assignment {
            error: NO_ERROR,
            leader: "l".into(),
            leader_url: "u".into(),
            config_offset: 3,
            assigned: allocation(&[("c", &[-1, 0])]),
            revoked: Allocation::new(),
            delay_ms: 5,
        };
        let expected: &[u8] = &[
            0, 1, // version
            0, 0, // error
            0, 1, b'l', 0, 1, b'u', // leader, leader url
            0, 0, 0, 0, 0, 0, 0, 3, // config offset
            0, 0, 0, 1, 0, 1, b'c', 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, // [{c, [-1, 0]}]
            0, 0, 0, 0, // revoked: []
            0, 0, 0, 5, // delay
        ];
        assert_eq!(&a.encode()[..], expected);
        assert_eq!(Assignment::decode(a.encode()).unwrap(), a);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let a = Assignment { leader: "leader".into(), ..Default::default() }.encode();
        for cut in 0..a.len() {
            assert!(Assignment::decode(a.slice(..cut)).is_err(), "cut at {cut}");
        }
    }
}
