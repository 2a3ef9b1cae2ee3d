//! PostgreSQL's binary COPY format, for rows whose every value has an exact binary form in its column's type.
//!
//! Binary COPY spares the sink formatting numbers as text and the server parsing them back (`strtod` was a
//! visible part of PostgreSQL's time). It is strict: an int8 column takes exactly eight bytes, so a value is
//! encoded only where its type and the column's agree (an integer into BIGINT, a string into TEXT). Any other
//! row is written with text COPY, where PostgreSQL converts the value as it would in SQL (`"42"` into an
//! integer column) or refuses it with its own message (`invalid input syntax for type integer`).
//!
//! tokio-postgres has `BinaryCopyInWriter`, but it needs a `ToSql` value of the column's exact Rust type and
//! fails the whole COPY on the first mismatch; the frame is a few lines, so rows that do not fit can instead
//! be sent the text way.

use crate::dialect::Cell;
use bytes::{BufMut, BytesMut};
use connect_core::{logical, Value};
use tokio_postgres::types::Type;

/// Signature, flags (no OIDs) and header-extension length.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// A field count of -1 ends the data.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// Microseconds and days from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;

/// Append one tuple with these cells into columns of these types (one type per cell). Returns `false`, with `out` as it was, when
/// some value has no exact binary form for its column (unknown column types included).
pub fn encode_row<'c, 'a: 'c>(cells: impl Iterator<Item = &'c Cell<'a>>, types: &[Option<Type>], out: &mut BytesMut) -> bool {
    let start = out.len();
    out.put_i16(types.len() as i16);
    for (cell, ty) in cells.zip(types) {
        let fits = match ty {
            Some(ty) => encode_value(&cell.value, cell.logical, ty, out),
            None => false,
        };
        if !fits {
            out.truncate(start);
            return false;
        }
    }
    true
}

fn put_fixed(out: &mut BytesMut, bytes: &[u8]) -> bool {
    out.put_i32(bytes.len() as i32);
    out.put_slice(bytes);
    true
}

/// A length-prefixed value, or `false` (possibly having written part of it: the caller truncates).
fn encode_value(value: &Value, logical_type: Option<&str>, ty: &Type, out: &mut BytesMut) -> bool {
    let int = |i: i64, out: &mut BytesMut| match *ty {
        Type::INT8 => put_fixed(out, &i.to_be_bytes()),
        Type::INT4 => i32::try_from(i).is_ok_and(|i| put_fixed(out, &i.to_be_bytes())),
        Type::INT2 => i16::try_from(i).is_ok_and(|i| put_fixed(out, &i.to_be_bytes())),
        // Exact in a double below 2^53, as the text form would parse.
        Type::FLOAT8 if i.unsigned_abs() <= 1 << 53 => put_fixed(out, &(i as f64).to_be_bytes()),
        _ => false,
    };
    match (value, logical_type) {
        (Value::Null, _) => {
            out.put_i32(-1);
            true
        }
        (Value::Int64(ms), Some(logical::TIMESTAMP)) if *ty == Type::TIMESTAMP || *ty == Type::TIMESTAMPTZ => {
            ms.checked_mul(1000).and_then(|us| us.checked_sub(PG_EPOCH_MICROS)).is_some_and(|us| put_fixed(out, &us.to_be_bytes()))
        }
        (Value::Int32(days), Some(logical::DATE)) if *ty == Type::DATE => {
            days.checked_sub(PG_EPOCH_DAYS).is_some_and(|d| put_fixed(out, &d.to_be_bytes()))
        }
        (Value::Int32(ms), Some(logical::TIME)) if *ty == Type::TIME => put_fixed(out, &(i64::from(*ms) * 1000).to_be_bytes()),
        (_, Some(_)) => false,
        (v @ (Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_)), None) => v.as_i64().is_some_and(|i| int(i, out)),
        (Value::Float64(f), None) if *ty == Type::FLOAT8 => put_fixed(out, &f.to_be_bytes()),
        (Value::Float32(f), None) if *ty == Type::FLOAT4 => put_fixed(out, &f.to_be_bytes()),
        (Value::Boolean(b), None) if *ty == Type::BOOL => put_fixed(out, &[u8::from(*b)]),
        (Value::String(s), None) if *ty == Type::TEXT || *ty == Type::VARCHAR => put_fixed(out, s.as_bytes()),
        (Value::Bytes(b), None) if *ty == Type::BYTEA => put_fixed(out, b),
        (v @ (Value::Array(_) | Value::Map(_) | Value::Struct(_)), None) if *ty == Type::JSONB || *ty == Type::JSON => {
            let text = v.to_json().to_string();
            let version: &[u8] = if *ty == Type::JSONB { &[1] } else { &[] };
            out.put_i32((version.len() + text.len()) as i32);
            out.put_slice(version);
            out.put_slice(text.as_bytes());
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn cell(value: Value, logical: Option<&'static str>) -> Cell<'static> {
        Cell { column: "c".into(), sql_type: "TEXT", value: Cow::Owned(value), logical }
    }

    /// The payload of a one-column tuple, after its field count and length (checked against the payload).
    fn encoded(value: Value, logical: Option<&'static str>, ty: Type) -> Option<Vec<u8>> {
        let mut out = BytesMut::new();
        let cells = [cell(value, logical)];
        if !encode_row(cells.iter(), &[Some(ty)], &mut out) {
            return None;
        }
        assert_eq!(&out[..2], &1i16.to_be_bytes());
        let len = i32::from_be_bytes(out[2..6].try_into().unwrap());
        assert_eq!(len.max(0) as usize, out.len() - 6);
        Some(if len < 0 { b"NULL".to_vec() } else { out[6..].to_vec() })
    }

    #[test]
    fn exact_matches_are_encoded_and_the_rest_refused() {
        assert_eq!(encoded(Value::Int64(7), None, Type::INT8), Some(7i64.to_be_bytes().to_vec()));
        assert_eq!(encoded(Value::Int64(7), None, Type::INT2), Some(7i16.to_be_bytes().to_vec()));
        assert_eq!(encoded(Value::Int64(70_000), None, Type::INT2), None, "out of range: PostgreSQL says so, via text");
        assert_eq!(encoded(Value::Float64(0.25), None, Type::FLOAT8), Some(0.25f64.to_be_bytes().to_vec()));
        assert_eq!(encoded(Value::String("x".into()), None, Type::INT8), None, "a string into an integer goes the text way");
        assert_eq!(encoded(Value::String("ab".into()), None, Type::TEXT), Some(b"ab".to_vec()));
        assert_eq!(encoded(Value::Boolean(true), None, Type::BOOL), Some(vec![1]));
        assert_eq!(encoded(Value::Null, None, Type::INT8), Some(b"NULL".to_vec()), "null is a length of -1");
        // 2020-10-06 13:41:00 UTC, microseconds since 2000-01-01.
        let ts = encoded(Value::Int64(1_601_991_660_000), Some(logical::TIMESTAMP), Type::TIMESTAMPTZ).unwrap();
        assert_eq!(i64::from_be_bytes(ts.try_into().unwrap()), 655_306_860_000_000);
        assert_eq!(encoded(Value::Int32(10_958), Some(logical::DATE), Type::DATE), Some(1i32.to_be_bytes().to_vec()));
        let json = encoded(Value::Array(vec![Value::Int64(1)]), None, Type::JSONB).unwrap();
        assert_eq!(json, b"\x01[1]".to_vec());
        assert_eq!(encoded(Value::Int64(1), None, Type::NUMERIC), None);
    }

    #[test]
    fn a_refused_row_leaves_the_buffer_as_it_was() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        let cells = [cell(Value::Int64(1), None), cell(Value::String("x".into()), None)];
        assert!(!encode_row(cells.iter(), &[Some(Type::INT8), Some(Type::INT8)], &mut out));
        assert_eq!(&out[..], b"prefix");
        assert!(encode_row(cells.iter(), &[Some(Type::INT8), Some(Type::TEXT)], &mut out));
        assert_eq!(out.len(), 6 + 2 + (4 + 8) + (4 + 1));
    }
}
