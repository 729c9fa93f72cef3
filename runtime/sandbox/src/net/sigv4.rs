//! AWS Signature Version 4, computed by the gate on the request a flavor built, so that
//! the secret key never enters the sandbox.
//!
//! What is signed: the method, the path and query (each part re-encoded as AWS
//! requires), the `host`, `x-amz-content-sha256`, `x-amz-date` and, with temporary
//! credentials, `x-amz-security-token` headers. The payload hash is the flavor's own
//! `x-amz-content-sha256` when it gave a valid one (a server checks the body against
//! it), else `UNSIGNED-PAYLOAD`: the body is never held back to be hashed.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The SHA-256 of nothing: the payload hash of a request without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An AWS key pair, with its region and the service it signs for.
#[derive(Clone)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub region: String,
    pub service: String,
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("invariant: HMAC takes any key length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// `YYYYMMDDTHHMMSSZ` of `now`, in UTC.
pub fn amz_date(now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Percent-encodes as AWS's canonical form wants: everything but `A-Za-z0-9-._~`
/// (and `/` when `slash` is kept).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k), false), encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Signs `parts` in place: sets `x-amz-date`, `x-amz-content-sha256`, the session token
/// if any, and `authorization`; removes any of them the flavor set.
pub fn sign(parts: &mut http::request::Parts, keys: &Keys, now: std::time::SystemTime) {
    let h = &mut parts.headers;
    for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
        h.remove(name);
    }
    let payload = h
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            *v == "UNSIGNED-PAYLOAD" || (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .unwrap_or("UNSIGNED-PAYLOAD")
        .to_ascii_lowercase()
        .replace("unsigned-payload", "UNSIGNED-PAYLOAD");
    let date = amz_date(now);
    let host = h
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string()))
        .unwrap_or_default();
    let set = |h: &mut http::HeaderMap, k: &'static str, v: &str| {
        if let Ok(v) = http::HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    set(h, "x-amz-date", &date);
    set(h, "x-amz-content-sha256", &payload);
    let mut signed: Vec<(&str, String)> = vec![
        ("host", host),
        ("x-amz-content-sha256", payload.clone()),
        ("x-amz-date", date.clone()),
    ];
    if let Some(t) = &keys.session_token {
        set(h, "x-amz-security-token", t);
        signed.push(("x-amz-security-token", t.clone()));
    }
    let names = signed.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(";");
    let path = parts.uri.path();
    let canonical_path = encode(&decode(if path.is_empty() { "/" } else { path }), true);
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        parts.method,
        canonical_path,
        canonical_query(parts.uri.query().unwrap_or("")),
        signed
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect::<String>(),
        names,
        payload
    );
    let signature = signature(keys, &date, &canonical);
    let scope = format!(
        "{}/{}/{}/aws4_request",
        &date[..8],
        keys.region,
        keys.service
    );
    if let Ok(mut v) = http::HeaderValue::from_str(&format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={names}, Signature={signature}",
        keys.access_key_id
    )) {
        v.set_sensitive(true);
        h.insert(http::header::AUTHORIZATION, v);
    }
}

/// The hex signature of `canonical` (a canonical request) at `date`.
fn signature(keys: &Keys, date: &str, canonical: &str) -> String {
    let day = &date[..8];
    let scope = format!("{day}/{}/{}/aws4_request", keys.region, keys.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{}", keys.secret_access_key).as_bytes(), day);
    let k = hmac(&k, &keys.region);
    let k = hmac(&k, &keys.service);
    let k = hmac(&k, "aws4_request");
    hex::encode(hmac(&k, &to_sign))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's own worked example ("Create a signed AWS API request", IAM ListUsers).
    #[test]
    fn the_signature_matches_aws_documented_example() {
        let keys = Keys {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            region: "us-east-1".into(),
            service: "iam".into(),
        };
        let canonical = "GET\n/\nAction=ListUsers&Version=2010-05-08\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            signature(&keys, "20150830T123600Z", canonical),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn dates_are_utc_in_amz_form() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(t), "20150830T123600Z");
        assert_eq!(amz_date(std::time::UNIX_EPOCH), "19700101T000000Z");
        let leap = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(amz_date(leap), "20000229T000000Z");
    }

    #[test]
    fn the_query_is_sorted_and_encoded_once() {
        assert_eq!(
            canonical_query("b=2&a=1&list-type=2"),
            "a=1&b=2&list-type=2"
        );
        assert_eq!(
            canonical_query("prefix=a%2Fb&x=a b"),
            "prefix=a%2Fb&x=a%20b"
        );
        assert_eq!(canonical_query("uploads"), "uploads=");
        assert_eq!(
            encode(&decode("/bucket/a%20b/c+d"), true),
            "/bucket/a%20b/c%2Bd"
        );
    }

    #[test]
    fn signing_replaces_what_the_flavor_set_and_keeps_a_valid_payload_hash() {
        let keys = Keys {
            access_key_id: "AK".into(),
            secret_access_key: "SK".into(),
            session_token: Some("TOKEN".into()),
            region: "us-east-1".into(),
            service: "s3".into(),
        };
        let (mut parts, ()) = http::Request::builder()
            .uri("http://127.0.0.1:9000/b/k")
            .header("host", "127.0.0.1:9000")
            .header("authorization", "AWS4-HMAC-SHA256 forged")
            .header("x-amz-security-token", "forged")
            .header("x-amz-content-sha256", EMPTY_SHA256)
            .body(())
            .unwrap()
            .into_parts();
        sign(&mut parts, &keys, std::time::UNIX_EPOCH);
        let auth = parts.headers["authorization"].to_str().unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AK/19700101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="), "{auth}");
        assert_eq!(parts.headers["x-amz-security-token"], "TOKEN");
        assert_eq!(parts.headers["x-amz-content-sha256"], EMPTY_SHA256);
        assert_eq!(parts.headers.get_all("authorization").iter().count(), 1);
    }
}
