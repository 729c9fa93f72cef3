//! The REST API's contract, shared by the daemon that serves it and the clients that
//! call it: what it answers ([`views`], the service's answers, and the operation and
//! daemon types here), the headers it speaks, its limits, and how a client finds the
//! daemon of a home ([`discovery`]). `runtime/server/src/openapi.json` documents it whole.

// The paths these modules were written with, from when strata was one crate.
#[allow(unused_imports)]
pub(crate) use strata_model::{self as model, error, home};

pub mod discovery;
pub mod views;

use serde::{Deserialize, Serialize};

use crate::views::{InFlight, Progress};

/// Every response carries the daemon's version in this header, so that a client of
/// another version can say so instead of failing on a shape it does not know.
pub const VERSION_HEADER: &str = "strata-version";

/// A warning of the call (a component left without a grant, a secret re-sealed…): one
/// header each, its value a JSON string (ASCII, so any text survives).
pub const WARNING_HEADER: &str = "strata-warning";

/// A line a flavor logged during the call, in the same form as a warning.
pub const LOG_HEADER: &str = "strata-log";

/// The most bytes of warnings and logs one response carries in headers; older log
/// lines beyond it are dropped, and a last line says how many.
pub const MAX_NOTES_BYTES: usize = 256 * 1024;
/// The most warning and log headers one response carries: HTTP clients refuse a
/// response with too many header lines (ureq at 64), however short they are.
pub const MAX_NOTE_HEADERS: usize = 48;

/// `strata-wording: cli` asks for errors worded for the command line (`--force`,
/// `--timeout-ms`), not for REST (`force`, `timeout_ms`): the CLI sends it so that its
/// messages read the same whether or not a daemon served them.
pub const WORDING_HEADER: &str = "strata-wording";

/// `strata-cwd: /abs/dir` (percent-encoded, see [`encode_path`]): the caller's working
/// directory, which relative paths in the request (a `path` field's value, say) are
/// taken from, as they would be in-process. Without it a relative path is refused.
pub const CWD_HEADER: &str = "strata-cwd";

/// The most a flavor's `.wasm` upload may be.
pub const MAX_UPLOAD: usize = strata_model::calls::MAX_WASM_BYTES;

/// The most any other request body may be.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// Every error: `{"error": {"code", "message", "hint"}}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hint: String,
}

/// What `GET /api/v1/daemon` answers (and `strata daemon status` shows).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Info {
    pub pid: u32,
    pub version: String,
    pub home: String,
    pub address: String,
    pub uptime_s: u64,
    pub requests: u64,
    pub rss_kib: u64,
    pub in_flight: Vec<InFlight>,
}

/// A lifecycle run started by a REST call, polled at `/api/v1/operations/{id}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Operation {
    pub id: String,
    /// On a team server, who started it: only they (and admins) see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// What runs, e.g. `stack up prod`.
    pub action: String,
    pub state: OpState,
    /// Each component's steps, as they happen.
    pub progress: Vec<Progress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// What the run warned about, once it has ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the flavors logged during the run, once it has ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
    pub started_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
}

/// Where an operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpState {
    Running,
    Succeeded,
    Failed,
    /// The daemon stopped (or was killed) before the run finished; the components'
    /// phases show where each one is, and running the operation again resumes it.
    Interrupted,
}

/// `text` as a header value: a JSON string with every character outside printable
/// ASCII escaped, so that it is a valid header whatever it holds.
pub fn note_header(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// A path as a header value: every byte but ASCII letters, digits and `/-_.~` as `%XX`.
pub fn encode_path(p: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in p.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path [`encode_path`] wrote, or `None` for a value it could not have written.
pub fn decode_path(v: &[u8]) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'%' => {
                let hex = std::str::from_utf8(v.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if b.is_ascii_graphic() => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(std::ffi::OsString::from_vec(out).into())
}

#[cfg(test)]
mod tests {
    use super::{decode_path, encode_path, note_header};

    #[test]
    fn any_path_survives_a_header() {
        for p in ["/", "/home/me/my work", "/tmp/日本/%41", "/a\nb"] {
            let e = encode_path(std::path::Path::new(p));
            assert!(e.bytes().all(|b| b.is_ascii_graphic()), "{e}");
            assert_eq!(decode_path(e.as_bytes()).unwrap(), std::path::Path::new(p));
        }
        assert_eq!(decode_path(b"/a%zz"), None);
    }

    #[test]
    fn any_text_survives_a_header() {
        for text in [
            "plain",
            "quote \" and \\",
            "tab\tbell\x07",
            "é 日本 🦀",
            "\u{202e}rtl",
        ] {
            let h = note_header(text);
            assert!(h.bytes().all(|b| (b' '..=b'~').contains(&b)), "{h}");
            assert_eq!(serde_json::from_str::<String>(&h).unwrap(), text);
        }
    }
}
