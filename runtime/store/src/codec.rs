//! The envelope around every stored record: `S`, a format version, a CRC-32 of the
//! body, then the body as JSON. JSON keeps records readable with any sled tool and lets
//! fields be added without a migration.

use serde::Serialize;
use serde::de::DeserializeOwned;

const MAGIC: u8 = b'S';
/// The envelope format version.
pub const VERSION: u8 = 1;
const HEADER: usize = 6;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let body = serde_json::to_vec(value).expect("invariant: strata's records serialize to JSON");
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.push(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Decodes a record, refusing anything whose envelope or checksum is wrong: strata does
/// not guess at damaged data.
pub fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T, String> {
    if raw.len() < HEADER || raw[0] != MAGIC {
        return Err("not a strata record (bad envelope)".into());
    }
    if raw[1] != VERSION {
        return Err(format!(
            "record format {} is not one this strata reads ({VERSION})",
            raw[1]
        ));
    }
    let crc = u32::from_le_bytes([raw[2], raw[3], raw[4], raw[5]]);
    let body = &raw[HEADER..];
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch: the record was damaged on disk".into());
    }
    serde_json::from_slice(body).map_err(|e| format!("unreadable record: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_bit_is_caught() {
        let mut raw = encode(&vec!["a".to_string(), "b".to_string()]);
        assert_eq!(decode::<Vec<String>>(&raw).unwrap(), vec!["a", "b"]);
        let last = raw.len() - 2;
        raw[last] ^= 1;
        assert!(
            decode::<Vec<String>>(&raw)
                .unwrap_err()
                .contains("checksum")
        );
    }
}
