//! What a guest's store holds: its WASI context (built from its grants and nothing
//! else), the resource limiter, and the buffers for its log lines and standard error.

use std::path::PathBuf;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::strata::flavor::host;
use super::bindings::types;
use crate::error::{Error, Result};

/// Lines longer than this are cut.
pub const MAX_LOG_LINE: usize = 4 * 1024;
/// Lines past this count in one call are dropped (and counted).
pub const MAX_LOG_LINES: usize = 256;
/// Bytes of log past this in one call are dropped (and counted).
pub const MAX_LOG_BYTES: usize = 64 * 1024;
/// What a guest may write to its standard error in one call (a panic message, say).
pub const MAX_STDERR: usize = 16 * 1024;

/// One line a flavor logged.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
}

/// The directories a call may use. Each is preopened read-write at its own path: the
/// flavor sees the same absolute paths its configuration names, and nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    pub dirs: Vec<PathBuf>,
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
    pub limiter: Limiter,
    pub logs: Vec<LogLine>,
    log_bytes: usize,
    pub dropped_logs: u64,
    stderr: MemoryOutputPipe,
}

impl HostState {
    pub fn new(grants: &Grants, memory_bytes: u64) -> Result<Self> {
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
            let guest = dir.to_string_lossy();
            b.preopened_dir(dir, guest.as_ref(), FsPerms::ReadWrite)
                .map_err(|e| {
                    Error::Internal(format!("granting directory {}: {e:#}", dir.display()))
                })?;
        }
        Ok(HostState {
            wasi: b.build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_bytes: memory_bytes as usize,
                memory_denied: false,
            },
            logs: Vec::new(),
            log_bytes: 0,
            dropped_logs: 0,
            stderr,
        })
    }

    /// What the guest wrote to standard error, as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
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

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: types::Level, mut message: String) {
        if self.logs.len() >= MAX_LOG_LINES || self.log_bytes >= MAX_LOG_BYTES {
            self.dropped_logs += 1;
            return;
        }
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        self.log_bytes += message.len();
        let level = match level {
            types::Level::Debug => "debug",
            types::Level::Info => "info",
            types::Level::Warn => "warn",
            types::Level::Error => "error",
        };
        self.logs.push(LogLine { level, message });
    }
}
