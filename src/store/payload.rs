//! How event payloads are stored: JSON compressed with zstd.
//!
//! Compression runs on the request task (many cores), not in the single
//! writer, and decompression is bounded so a corrupt row cannot make a page
//! allocate without limit.

use serde_json::Value;
use std::cell::RefCell;
use zstd::bulk::{Compressor, Decompressor};

/// zstd level 3: about 3.5× on SDK events at a few tens of microseconds
/// per event; higher levels cost several times the CPU for a few percent.
const LEVEL: i32 = 3;

/// Larger than any event ingest accepts (`SNAG_MAX_EVENT_BYTES` defaults
/// to 1 MiB; normalisation adds little).
const MAX_DECODED: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("stored payload does not decompress: {0}")]
    Decompress(std::io::Error),
    #[error("stored payload is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

thread_local! {
    // A zstd context holds about a megabyte of tables; making one per
    // event cost more than compressing the event itself.
    static COMPRESSOR: RefCell<Compressor<'static>> =
        RefCell::new(Compressor::new(LEVEL).expect("zstd level 3 is valid"));
    static DECOMPRESSOR: RefCell<Decompressor<'static>> =
        RefCell::new(Decompressor::new().expect("zstd decompressor"));
}

pub fn encode(value: &Value) -> Vec<u8> {
    let json = serde_json::to_vec(value).expect("a JSON value always serialises");
    COMPRESSOR
        .with_borrow_mut(|c| c.compress(&json))
        .expect("in-memory compression cannot fail")
}

pub fn decode(bytes: &[u8]) -> Result<Value, PayloadError> {
    let json = DECOMPRESSOR
        .with_borrow_mut(|d| d.decompress(bytes, MAX_DECODED))
        .map_err(PayloadError::Decompress)?;
    Ok(serde_json::from_slice(&json)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_round_trip_and_shrink() {
        let event = json!({"exception": {"values": [{"type": "KeyError", "value": "'sku'",
            "stacktrace": {"frames": vec![json!({"function": "handle", "module": "shop.views", "context_line": "    return cart['sku']"}); 40]}}]}});
        let stored = encode(&event);
        assert!(stored.len() * 3 < serde_json::to_vec(&event).unwrap().len());
        assert_eq!(decode(&stored).unwrap(), event);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"not zstd").is_err());
        let not_json = zstd::bulk::compress(b"{oops", 1).unwrap();
        assert!(matches!(decode(&not_json), Err(PayloadError::Json(_))));
    }
}
