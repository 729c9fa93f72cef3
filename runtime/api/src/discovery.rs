//! How a client finds the daemon that serves a home: the daemon writes `daemon.json`
//! (address, pid, bearer token; mode 0600) into the home once it listens, and holds
//! `daemon.lock` from before it opens the store until it exits.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::home::Home;

/// What `daemon.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DaemonFile {
    pub pid: u32,
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// Sent as `Authorization: Bearer TOKEN` on every request but `/health`.
    pub token: String,
    pub started_at: u64,
    pub version: String,
    /// When the process started, in clock ticks since boot (`/proc/PID/stat`), so that
    /// another process that was given the same pid later is not taken for the daemon.
    #[serde(default)]
    pub proc_start: u64,
}

impl DaemonFile {
    pub fn read(home: &Home) -> Option<DaemonFile> {
        let text = std::fs::read_to_string(home.daemon_file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Written whole (a temporary file renamed into place), readable by its owner only.
    pub fn write(&self, home: &Home) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("invariant: serializes");
        strata_model::fsutil::write_private(&home.daemon_file(), text.as_bytes())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Whether the daemon this file describes still runs: its pid is alive and is the
    /// same process (started at the same moment), not one that reused the pid after a
    /// crash or a reboot.
    pub fn is_running(&self) -> bool {
        alive(self.pid) && (self.proc_start == 0 || proc_start(self.pid) == Some(self.proc_start))
    }
}

/// When process `pid` started, in clock ticks since boot: field 22 of `/proc/PID/stat`.
pub fn proc_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `PID (COMMAND) STATE PPID …`: the command may hold spaces and parentheses, so the
    // fields are counted from the last `)`; STATE is field 3, the start time field 22.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The lock a daemon holds on `STRATA_HOME/daemon.lock` for as long as it runs (from
/// before it opens the store until it exits), so that two daemons started at the same
/// moment cannot both believe they are the only one, and a CLI command can tell a daemon
/// that is still opening the store from none.
///
/// It is a POSIX record lock (`fcntl`), so that others can ask who holds it
/// (`F_GETLK`) without taking it, which would race with a daemon starting. Such a lock
/// goes when its process closes any descriptor of the file: the daemon's process never
/// opens `daemon.lock` again.
pub struct DaemonLock {
    _file: std::fs::File,
}

impl DaemonLock {
    fn path(home: &Home) -> PathBuf {
        home.root().join("daemon.lock")
    }

    fn whole_file(kind: libc::c_short) -> libc::flock {
        // SAFETY: `flock` is a plain C struct; all zeroes is a valid value of it.
        let mut l: libc::flock = unsafe { std::mem::zeroed() };
        l.l_type = kind;
        l.l_whence = libc::SEEK_SET as libc::c_short;
        l
    }

    /// Takes the lock, or `None` when a daemon holds it.
    pub fn take(home: &Home) -> Result<Option<DaemonLock>> {
        use std::os::fd::AsRawFd;
        home.create()?;
        let path = DaemonLock::path(home);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let lock = DaemonLock::whole_file(libc::F_WRLCK as libc::c_short);
        // SAFETY: F_SETLK on a descriptor this function owns, with a valid `flock`.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) };
        if r == 0 {
            return Ok(Some(DaemonLock { _file: file }));
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            // Another process holds it.
            Some(libc::EACCES | libc::EAGAIN) => Ok(None),
            _ => Err(Error::invalid(
                format!("cannot lock {}: {e}", path.display()),
                "the daemon needs a file system with POSIX locks for STRATA_HOME (not every network file system has them): set STRATA_HOME to a local directory",
            )),
        }
    }

    /// The pid of the daemon that holds the lock of `home` now (it may still be
    /// starting), asked without taking the lock.
    pub fn holder(home: &Home) -> Option<u32> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(DaemonLock::path(home)).ok()?;
        let mut probe = DaemonLock::whole_file(libc::F_WRLCK as libc::c_short);
        // SAFETY: F_GETLK on a descriptor this function owns; it only fills `probe`.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut probe) };
        (r == 0 && probe.l_type != libc::F_UNLCK as libc::c_short).then_some(probe.l_pid as u32)
    }
}

/// Whether process `pid` is alive: it exists (signal 0 checks without sending anything)
/// and has not ended (a daemon's parent has gone, so its end may wait to be reaped).
pub fn alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    let exists = r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !zombie(pid)
}

fn zombie(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // `PID (COMMAND) STATE …`; the command may hold spaces and parentheses.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X")
}
