//! One connection to a Kafka broker for the group requests librdkafka cannot make (a group of protocol
//! type `connect`): request framing over TCP with the `kafka-protocol` crate's codecs.
//!
//! Plaintext only so far: a worker whose `security.protocol` is not PLAINTEXT is refused at start in
//! distributed mode (see `DistributedConfig`).

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot connect to {address}: {source}")]
    Connect { address: String, source: std::io::Error },
    #[error("connection to {address} failed: {source}")]
    Io { address: String, source: std::io::Error },
    #[error("no answer from {address} within {timeout:?}")]
    Timeout { address: String, timeout: Duration },
    #[error("cannot encode or decode a Kafka message: {0}")]
    Codec(String),
    #[error("answer to another request (correlation id {got}, expected {expected})")]
    Correlation { got: i32, expected: i32 },
}

pub struct Connection {
    address: String,
    stream: TcpStream,
    next_correlation: i32,
    client_id: StrBytes,
}

/// Responses larger than this are a protocol error, not an allocation.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

impl Connection {
    pub async fn open(address: &str, client_id: &str, timeout: Duration) -> Result<Self, WireError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| WireError::Timeout { address: address.into(), timeout })?
            .map_err(|source| WireError::Connect { address: address.into(), source })?;
        let _ = stream.set_nodelay(true);
        Ok(Connection { address: address.into(), stream, next_correlation: 1, client_id: StrBytes::from_string(client_id.into()) })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Send `request` at `version` and wait up to `timeout` for its response.
    pub async fn call<R: Request>(&mut self, request: R, version: i16, timeout: Duration) -> Result<R::Response, WireError> {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(self.client_id.clone()));
        let mut body = BytesMut::new();
        body.put_i32(0); // size, filled in below
        header.encode(&mut body, R::header_version(version)).map_err(|e| WireError::Codec(e.to_string()))?;
        request.encode(&mut body, version).map_err(|e| WireError::Codec(e.to_string()))?;
        let size = (body.len() - 4) as i32;
        body[..4].copy_from_slice(&size.to_be_bytes());
        let address = self.address.clone();
        let exchange = async {
            self.stream.write_all(&body).await?;
            let size = self.stream.read_i32().await?;
            if size < 4 || size as usize > MAX_RESPONSE {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("response size {size}")));
            }
            let mut response = vec![0u8; size as usize];
            self.stream.read_exact(&mut response).await?;
            Ok(bytes::Bytes::from(response))
        };
        let mut response = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| WireError::Timeout { address: address.clone(), timeout })?
            .map_err(|source| WireError::Io { address, source })?;
        let got = response.get_i32();
        if got != correlation {
            return Err(WireError::Correlation { got, expected: correlation });
        }
        if <R::Response as HeaderVersion>::header_version(version) >= 1 {
            // Flexible response header: tagged fields after the correlation id.
            skip_tagged_fields(&mut response).map_err(WireError::Codec)?;
        }
        R::Response::decode(&mut response, version).map_err(|e| WireError::Codec(e.to_string()))
    }
}

/// Skip a tagged-field section (unsigned varint count, then tag, size, bytes).
fn skip_tagged_fields(buf: &mut bytes::Bytes) -> Result<(), String> {
    let count = read_uvarint(buf)?;
    for _ in 0..count {
        let _tag = read_uvarint(buf)?;
        let size = read_uvarint(buf)? as usize;
        if buf.remaining() < size {
            return Err("truncated tagged field".into());
        }
        buf.advance(size);
    }
    Ok(())
}

fn read_uvarint(buf: &mut bytes::Bytes) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            return Err("truncated varint".into());
        }
        let b = buf.get_u8();
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}
