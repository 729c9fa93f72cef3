//! What a guest's store holds: its WASI context (built from its grants and nothing
//! else), the resource limiter, and the buffers for its log lines and standard error.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{ResourceTable, WasmStr};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::types;
pub use super::dirs::GrantedDir;
use crate::error::{Error, Result};

/// Lines longer than this are cut.
pub const MAX_LOG_LINE: usize = 4 * 1024;
/// Lines past this count in one call are dropped (and counted).
pub const MAX_LOG_LINES: usize = 256;
/// Bytes of log past this in one call are dropped (and counted).
pub const MAX_LOG_BYTES: usize = 64 * 1024;
/// What a guest may write to its standard error in one call (a panic message, say).
pub const MAX_STDERR: usize = 16 * 1024;
/// Handles a call may hold at once: open files and directories (each one host file
/// descriptor), streams, pollables. With [`super::MAX_CONCURRENT_CALLS`] this bounds the
/// descriptors all flavors can hold in one strata process.
pub const MAX_HANDLES: usize = 256;

/// One line a flavor logged.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
}

/// What one call holds. The directories, each opened without following symlinks
/// ([`GrantedDir`]) and preopened read-write at its own path: the flavor sees the same
/// absolute paths its configuration names, and nothing else. The secrets resolved for
/// the call: every string the call hands back (its answer, its logs, its panic text) has
/// their values masked before strata keeps or shows it.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    pub dirs: Vec<GrantedDir>,
    pub secrets: Vec<String>,
    /// The origins its `wasi:http` requests may reach ([`crate::net`]).
    pub net: crate::net::NetGrants,
}

/// The log of one call: the flavor's lines (capped) and the gate's (one per request,
/// bounded by [`crate::net::MAX_REQUESTS`]), in the order they happened.
#[derive(Debug, Default)]
pub struct Journal {
    pub lines: Vec<LogLine>,
    flavor_lines: usize,
    flavor_bytes: usize,
    pub dropped: u64,
}

impl Journal {
    /// A line of the network gate's: always kept (the gate bounds their number).
    pub fn push_net(&mut self, line: LogLine) {
        self.lines.push(line);
    }
}

/// What strata shows instead of a secret's value.
pub const MASK: &str = "********";

/// `text` with every value in `secrets` replaced by [`MASK`] (longest first, so a
/// secret that contains another is masked whole).
pub fn mask(text: String, secrets: &[String]) -> String {
    if secrets.is_empty()
        || !secrets
            .iter()
            .any(|s| !s.is_empty() && text.contains(s.as_str()))
    {
        return text;
    }
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text;
    for s in sorted {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// The caps applied to one store: linear memory, instances, tables.
pub struct Limiter {
    pub memory_bytes: usize,
    /// Set when the guest asked for more memory than its cap.
    pub memory_denied: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    /// A growth the cap allowed but the engine could not give (the pooling allocator's
    /// slot is full): to the flavor it is the same refusal, and it is classified as such
    /// from this flag, not from the engine's words.
    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_denied = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        // One per core module of a component; a flavor needs a handful at most.
        16
    }
}

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    gate: crate::net::Gate,
    pub limiter: Limiter,
    pub journal: Arc<Mutex<Journal>>,
    /// Masked out of every log line and of standard error.
    pub secrets: Vec<String>,
    stderr: MemoryOutputPipe,
}

impl HostState {
    /// The state of one call of `flavor`, which must end by `deadline`.
    pub fn new(
        grants: &Grants,
        memory_bytes: u64,
        deadline: Instant,
        flavor: &str,
    ) -> Result<Self> {
        let stderr = MemoryOutputPipe::new(MAX_STDERR);
        let mut b = WasiCtxBuilder::new();
        b.stderr(stderr.clone())
            // Calls run synchronously on a thread of their own (the CLI's, or one of the
            // daemon's blocking pool): a file operation blocks that thread rather than
            // hopping to tokio's blocking pool and back, which cost a local artifact
            // store's `status` (a handful of file operations) about half a millisecond.
            .allow_blocking_current_thread(true)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for dir in &grants.dirs {
            let guest = dir.path.to_string_lossy();
            b.preopened_dir(dir.proc_path(), guest.as_ref(), FsPerms::ReadWrite)
                .map_err(|e| {
                    Error::Internal(format!("granting directory {}: {e:#}", dir.path.display()))
                })?;
        }
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        let journal = Arc::new(Mutex::new(Journal::default()));
        let mut http = WasiHttpCtx::new();
        // Header names and values a flavor sends or receives, each (the default is 128 KiB).
        http.set_field_size_limit(16 * 1024);
        Ok(HostState {
            wasi: b.build(),
            table,
            http,
            gate: crate::net::Gate::new(
                grants.net.clone(),
                deadline,
                journal.clone(),
                flavor,
                grants.secrets.clone(),
            ),
            limiter: Limiter {
                memory_bytes: memory_bytes as usize,
                memory_denied: false,
            },
            journal,
            secrets: grants.secrets.clone(),
            stderr,
        })
    }

    /// The gate's line about a request the call's deadline cut, if there is one: what
    /// a call that timed out was waiting on.
    pub fn waiting_on_network(&self) -> Option<String> {
        let j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        j.lines
            .iter()
            .rev()
            .find(|l| l.message.starts_with("http ") && l.message.contains("deadline"))
            .map(|l| l.message.clone())
    }

    /// What the guest wrote to standard error, as text, secrets masked.
    pub fn stderr_text(&self) -> String {
        mask(
            String::from_utf8_lossy(&self.stderr.contents())
                .trim()
                .to_string(),
            &self.secrets,
        )
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.gate,
        }
    }
}

/// `strata:flavor/host.log`, linked by hand (not through the bindings) so that the
/// message is read from the guest's memory as a view ([`WasmStr`]): only the part strata
/// keeps is ever copied, whatever length the flavor passes.
pub fn log(
    mut cx: wasmtime::StoreContextMut<'_, HostState>,
    level: types::Level,
    message: WasmStr,
) -> wasmtime::Result<()> {
    let state = cx.data();
    {
        let mut j = state.journal.lock().unwrap_or_else(|e| e.into_inner());
        if j.flavor_lines >= MAX_LOG_LINES || j.flavor_bytes >= MAX_LOG_BYTES {
            j.dropped += 1;
            return Ok(());
        }
    }
    let longest_secret = state.secrets.iter().map(String::len).max().unwrap_or(0);
    let (mut kept, cut) = {
        let text = message.to_str(&cx)?;
        // Enough past the cut that a secret starting before it is masked whole.
        let window = floor_char_boundary(&text, MAX_LOG_LINE + longest_secret);
        (text[..window].to_string(), text.len() > MAX_LOG_LINE)
    };
    let state = cx.data_mut();
    kept = mask(kept, &state.secrets);
    if cut || kept.len() > MAX_LOG_LINE {
        kept.truncate(floor_char_boundary(&kept, MAX_LOG_LINE));
        kept.push('…');
    }
    let level = match level {
        types::Level::Debug => "debug",
        types::Level::Info => "info",
        types::Level::Warn => "warn",
        types::Level::Error => "error",
    };
    let mut j = state.journal.lock().unwrap_or_else(|e| e.into_inner());
    j.flavor_lines += 1;
    j.flavor_bytes += kept.len();
    j.lines.push(LogLine {
        level,
        message: kept,
    });
    Ok(())
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut cut = at;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}
