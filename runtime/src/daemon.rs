//! `strata daemon`: one long-lived process that holds a home's store and serves it over
//! HTTP on loopback, to the CLI (which goes through it by itself when it runs) and to
//! programs (the REST API under `/api/v1`, described by `openapi.json`).
//!
//! sled lets one process open a database, so while a daemon runs it is the only way in.
//! It writes `daemon.json` (address, pid, bearer token; mode 0600) into the home once it
//! listens, and removes it when it stops.

pub mod api;
pub mod client;
pub mod connections;
pub mod server;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cli::Format;
use crate::cli::render::{properties, structured};
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
        crate::service::write_private(&home.daemon_file(), text.as_bytes())
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

/// `strata daemon start|stop|status|logs`.
pub fn command(home: Option<PathBuf>, cmd: &crate::cli::DaemonCmd, format: Format) -> Result<()> {
    use crate::cli::DaemonCmd;
    let home = Home::resolve(home)?;
    match cmd {
        DaemonCmd::Start {
            port,
            foreground,
            grace_ms,
        } => {
            refuse_second(&home)?;
            if *foreground {
                server::serve(home, *port, Duration::from_millis(*grace_ms))
            } else {
                start_background(&home, *port, *grace_ms, format)
            }
        }
        DaemonCmd::Stop => stop(&home),
        DaemonCmd::Status => status(&home, format),
        DaemonCmd::Logs { lines } => {
            for line in read_log(&home, *lines)? {
                println!("{}", crate::model::text::visible(&line));
            }
            Ok(())
        }
    }
}

/// The last `n` lines of the log of a daemon started in the background.
pub fn read_log(home: &Home, n: usize) -> Result<Vec<String>> {
    let log = log_file(home);
    let text = std::fs::read_to_string(&log).map_err(|e| {
        Error::not_found(
            format!("the daemon log {} ({e})", log.display()),
            "it is written by `strata daemon start`; a daemon started with --foreground logs to its terminal",
        )
    })?;
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(n);
    Ok(all[from..].iter().map(|l| l.to_string()).collect())
}

/// Where a daemon started in the background writes its log.
pub fn log_file(home: &Home) -> PathBuf {
    home.root().join("daemon.log")
}

fn refuse_second(home: &Home) -> Result<()> {
    if let Some(d) = DaemonFile::read(home)
        && d.is_running()
    {
        return Err(Error::exists(
            format!(
                "a strata daemon for {} (pid {}, http://{})",
                home.root().display(),
                d.pid,
                d.address
            ),
            "one daemon serves a home; stop it first with `strata daemon stop`, or use it: every strata command goes through it",
        ));
    }
    if DaemonLock::holder(home).is_some() {
        return Err(Error::exists(
            format!(
                "a strata daemon for {} (it is starting)",
                home.root().display()
            ),
            "one daemon serves a home; wait for it (`strata daemon status`), or stop it with `strata daemon stop`",
        ));
    }
    Ok(())
}

fn start_background(home: &Home, port: u16, grace_ms: u64, format: Format) -> Result<()> {
    use std::os::unix::process::CommandExt;
    home.create()?;
    let log = log_file(home);
    let open_log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| Error::io(format!("opening {}", log.display()), e))
    };
    let exe = std::env::current_exe().map_err(|e| Error::io("finding the strata binary", e))?;
    let mut child = std::process::Command::new(exe);
    child
        .arg("--home")
        .arg(home.root())
        .args(["daemon", "start", "--foreground"])
        .arg(format!("--port={port}"))
        .arg(format!("--grace-ms={grace_ms}"))
        .stdin(std::process::Stdio::null())
        .stdout(open_log()?)
        .stderr(open_log()?)
        .current_dir("/");
    // SAFETY: setsid is async-signal-safe; the daemon leaves this terminal's session so
    // that closing the terminal does not stop it.
    unsafe {
        child.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = child
        .spawn()
        .map_err(|e| Error::io("starting the daemon", e))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(code) = child
            .try_wait()
            .map_err(|e| Error::io("waiting for the daemon", e))?
        {
            // Another daemon started at the same moment and won the home's lock.
            if let Some(pid) = DaemonLock::holder(home) {
                return Err(Error::exists(
                    format!("a strata daemon for {} (pid {pid})", home.root().display()),
                    "one daemon serves a home; it started just now, at the same time as this one: use it, or stop it with `strata daemon stop`",
                ));
            }
            // The daemon printed strata's own `error: …` / `hint: …`: pass them on as
            // they are, rather than nested in a second error.
            let said = tail(&log, 8);
            if let Some((what, hint)) = said
                .rsplit_once("error: ")
                .map(|(_, last)| last.split_once("\n\nhint: ").unwrap_or((last, "")))
            {
                let hint = match hint.trim() {
                    "" => format!("its log is {}", log.display()),
                    hint => format!("{hint} (its log is {})", log.display()),
                };
                return Err(Error::invalid(
                    format!("the daemon did not start: {}", what.trim()),
                    hint,
                ));
            }
            return Err(Error::invalid(
                format!("the daemon stopped while starting ({code}):\n{said}"),
                format!("its whole log is {}", log.display()),
            ));
        }
        if let Some(d) = DaemonFile::read(home)
            && d.pid == child.id()
        {
            let view = StatusView::running(home, &d);
            if let Some(s) = structured(format, &view) {
                print!("{s}");
            } else {
                eprintln!(
                    "strata daemon started (pid {}), serving {} at http://{}.\nEvery strata command for this home now goes through it; `strata daemon stop` stops it.",
                    d.pid,
                    home.root().display(),
                    d.address
                );
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(Error::invalid(
                "the daemon did not start listening within 30 s",
                format!("see its log, {}", log.display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn stop(home: &Home) -> Result<()> {
    let Some(d) = DaemonFile::read(home) else {
        // A daemon still opening the store (or whose file was removed) holds the lock:
        // only a strata daemon takes it, so its holder is the one to stop.
        if let Some(pid) = DaemonLock::holder(home) {
            return stop_pid(home, pid);
        }
        eprintln!("No strata daemon runs for {}.", home.root().display());
        return Ok(());
    };
    if !d.is_running() {
        let _ = std::fs::remove_file(home.daemon_file());
        eprintln!(
            "No strata daemon runs for {} (removed the file of one that had ended, pid {}).",
            home.root().display(),
            d.pid
        );
        return Ok(());
    }
    stop_pid(home, d.pid)
}

/// Sends SIGTERM to daemon `pid` and waits for that process (the same start time) to
/// end: it finishes calls under way within its grace period first.
fn stop_pid(home: &Home, pid: u32) -> Result<()> {
    let born = proc_start(pid);
    let same = || alive(pid) && proc_start(pid) == born;
    // SAFETY: sends SIGTERM to a strata daemon of this home: the pid it wrote about
    // itself (checked against its start time), or the holder of its lock.
    let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    if sent != 0 {
        return Err(Error::invalid(
            format!(
                "cannot signal the daemon (pid {pid}): {}",
                std::io::Error::last_os_error()
            ),
            "it runs as another user: stop it as that user",
        ));
    }
    let started = Instant::now();
    while same() {
        if started.elapsed() > Duration::from_secs(120) {
            return Err(Error::invalid(
                format!("the daemon (pid {pid}) is still running after 120 s"),
                format!(
                    "see `strata daemon logs`; `kill -9 {pid}` ends it at once (calls under way are then recorded as interrupted by the next `up`)"
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "Stopped the strata daemon (pid {pid}) of {} in {} ms.",
        home.root().display(),
        started.elapsed().as_millis()
    );
    Ok(())
}

/// What `daemon status` shows.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusView {
    pub running: bool,
    pub home: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<server::Info>,
}

impl StatusView {
    fn running(home: &Home, d: &DaemonFile) -> StatusView {
        StatusView {
            running: true,
            home: home.root().display().to_string(),
            pid: Some(d.pid),
            address: Some(format!("http://{}", d.address)),
            info: None,
        }
    }
}

fn status(home: &Home, format: Format) -> Result<()> {
    let view = match DaemonFile::read(home).filter(DaemonFile::is_running) {
        None => StatusView {
            running: false,
            home: home.root().display().to_string(),
            pid: None,
            address: None,
            info: None,
        },
        Some(d) => {
            let info = client::Conn::new(d.clone()).info()?;
            StatusView {
                info: Some(info),
                ..StatusView::running(home, &d)
            }
        }
    };
    if let Some(s) = structured(format, &view) {
        print!("{s}");
        return Ok(());
    }
    let Some(info) = &view.info else {
        println!(
            "No strata daemon runs for {}; `strata daemon start` starts one.",
            view.home
        );
        return Ok(());
    };
    let mut rows = vec![
        ("HOME".to_string(), view.home.clone()),
        ("ADDRESS".into(), view.address.clone().unwrap_or_default()),
        ("PID".into(), info.pid.to_string()),
        ("VERSION".into(), info.version.clone()),
        ("UP FOR".into(), format!("{} s", info.uptime_s)),
        ("REQUESTS SERVED".into(), info.requests.to_string()),
        ("MEMORY (RSS)".into(), format!("{} KiB", info.rss_kib)),
    ];
    let calls: Vec<String> = info
        .in_flight
        .iter()
        .map(|c| format!("{} `{}` {}", c.component_type, c.name, c.call))
        .collect();
    rows.push((
        "CALLS UNDER WAY".into(),
        if calls.is_empty() {
            "none".into()
        } else {
            calls.join(", ")
        },
    ));
    print!("{}", properties("strata daemon", &rows));
    Ok(())
}
