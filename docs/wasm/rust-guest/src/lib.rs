//! A WASM transform in Rust (ABI v1, docs/wasm-abi.md): masks one field of each record's value, like
//! Kafka's MaskField. The field is `secret` unless `transforms.<name>.config.field` names another.

use serde_json::Value;
use std::cell::RefCell;

thread_local! {
    /// Where the host writes each record (and the configuration), reused from one record to the next.
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The answer, valid until the next `alloc`.
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    static FIELD: RefCell<String> = RefCell::new("secret".to_string());
}

/// `(ptr << 32) | len` of a slice in this module's memory.
fn packed(bytes: &[u8]) -> i64 {
    ((bytes.as_ptr() as u32 as i64) << 32) | bytes.len() as i64
}

fn fail(message: String) -> i64 {
    ERROR.with_borrow_mut(|e| *e = message);
    -1
}

#[no_mangle]
pub extern "C" fn alloc(len: i32) -> i32 {
    INPUT.with_borrow_mut(|input| {
        input.clear();
        input.resize(len as usize, 0);
        input.as_mut_ptr() as i32
    })
}

#[no_mangle]
pub extern "C" fn configure(_ptr: i32, _len: i32) -> i32 {
    let config: Result<Value, _> = INPUT.with_borrow(|input| serde_json::from_slice(input));
    match config {
        Ok(config) => {
            if let Some(field) = config.get("field") {
                match field.as_str() {
                    Some(name) if !name.is_empty() => FIELD.with_borrow_mut(|f| *f = name.to_string()),
                    _ => return fail("config.field must be a field name".into()) as i32,
                }
            }
            0
        }
        Err(e) => fail(format!("the configuration is not JSON: {e}")) as i32,
    }
}

#[no_mangle]
pub extern "C" fn transform(_ptr: i32, _len: i32) -> i64 {
    match INPUT.with_borrow(|input| mask(input)) {
        Ok(Some(answer)) => OUTPUT.with_borrow_mut(|out| {
            *out = answer;
            packed(out)
        }),
        // Nothing to mask: hand the record back as it came.
        Ok(None) => INPUT.with_borrow(|input| packed(input)),
        Err(message) => fail(message),
    }
}

#[no_mangle]
pub extern "C" fn last_error() -> i64 {
    ERROR.with_borrow(|e| packed(e.as_bytes()))
}

/// `{"value": ...}` with the field masked, or `None` when the value has no such field.
fn mask(input: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let record: Value = serde_json::from_slice(input).map_err(|e| e.to_string())?;
    let field = FIELD.with_borrow(|f| f.clone());
    let Some(Value::Object(value)) = record.get("value") else { return Ok(None) };
    if value.get(&field).is_none_or(Value::is_null) {
        return Ok(None);
    }
    let mut value = value.clone();
    value.insert(field, Value::String("****".into()));
    serde_json::to_vec(&serde_json::json!({ "value": value })).map(Some).map_err(|e| e.to_string())
}
