//! `strata daemon start|stop|status|logs`: starting a daemon in the background (this
//! binary, run again as `daemon start --foreground`), stopping it, and asking it how it
//! is.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Format;
use super::render::{properties, structured};
use crate::daemon::{DaemonFile, DaemonLock, alive, log_file, proc_start, read_log, server};
use crate::error::{Error, Result};
use crate::home::Home;

/// `strata daemon start|stop|status|logs`.
pub fn command(home: Option<PathBuf>, cmd: &super::DaemonCmd, format: Format) -> Result<()> {
    use super::DaemonCmd;
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

/// `strata dashboard`: a one-time link to this home's daemon (started first when none
/// runs), or the address of the team server of `strata login`; opened in a browser when
/// there is a desktop to open it on and `--no-open` is not given.
pub fn dashboard(home: Option<PathBuf>, no_open: bool, format: Format) -> Result<()> {
    // `--output json|yaml`: `{"url": …}` and nothing else on stdout.
    let print = |url: &str| match structured(format, &serde_json::json!({ "url": url })) {
        Some(s) => print!("{s}"),
        None => println!("{url}"),
    };
    let explicit = home.is_some() || std::env::var_os("STRATA_HOME").is_some_and(|v| !v.is_empty());
    if !explicit && let Some(login) = crate::client::login::read()? {
        let url = format!("{}/", login.url.trim_end_matches('/'));
        print(&url);
        eprintln!(
            "The dashboard of the team server you are logged in to, as {}: log in on the page with your API token (the one `strata login` keeps in {}).",
            login.user,
            crate::client::login::file()?.display()
        );
        open_in_browser(&url, no_open);
        return Ok(());
    }
    let home = Home::resolve(home)?;
    let daemon = match DaemonFile::read(&home).filter(DaemonFile::is_running) {
        Some(d) => d,
        None => {
            start_background(&home, 0, 3000, Format::Table)?;
            DaemonFile::read(&home).ok_or_else(|| {
                Error::Internal("the daemon started but wrote no daemon.json".into())
            })?
        }
    };
    let url = crate::client::remote::Remote::new(daemon).dashboard_link()?;
    print(&url);
    eprintln!(
        "Open this link to see {}'s stacks, components and runs: it works once, within {} s (run `strata dashboard` again for another). The dashboard lasts until the daemon stops.",
        home.root().display(),
        crate::daemon::dashboard::LINK_TTL.as_secs()
    );
    if wants_browser(no_open) {
        // The link opens a session: it never goes on a command line, where every user of
        // the machine can read it (`ps`, /proc) before the browser uses it. The browser
        // is given a file only this user can read, which sends it on to the link.
        match handoff_file(&home, &url) {
            Ok(file) => open_in_browser(&file_url(&file), false),
            Err(e) => eprintln!(
                "(could not write the page that opens the link: {e}; open the link yourself)"
            ),
        }
    }
    Ok(())
}

/// Whether to start the desktop's browser: there is a desktop and a terminal, and
/// `--no-open` was not given.
fn wants_browser(no_open: bool) -> bool {
    use std::io::IsTerminal;
    let desktop = cfg!(target_os = "macos")
        || std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some();
    !no_open && desktop && std::io::stdout().is_terminal()
}

/// Writes a page that sends a browser on to `url` into `HOME/dashboard/`, readable by
/// this user alone (0600, in a 0700 directory), and returns its path. Pages older than
/// a link's lifetime hold only used or expired codes; they are removed first.
fn handoff_file(home: &Home, url: &str) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = home.root().join("dashboard");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let ttl = crate::daemon::dashboard::LINK_TTL;
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > ttl));
        if stale && entry.file_name().to_string_lossy().starts_with("open-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let file = dir.join(format!("open-{}-{nanos}.html", std::process::id()));
    let escaped = url
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let page = format!(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<meta name=\"referrer\" content=\"no-referrer\">\n<meta http-equiv=\"refresh\" content=\"0;url={escaped}\">\n<title>strata dashboard</title>\n<p>Opening <a href=\"{escaped}\">the strata dashboard</a>.</p>\n"
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)?;
    f.write_all(page.as_bytes())?;
    Ok(file)
}

/// `path` as a `file://` URL, each byte but `/` and the unreserved ones percent-encoded
/// (as the API encodes a path in a header).
fn file_url(path: &Path) -> String {
    format!("file://{}", crate::client::api::encode_path(path))
}

/// Starts the desktop's browser on `url` (`xdg-open`, or `open` on macOS) when
/// [`wants_browser`] says so. `url` is on the opener's command line: never a secret.
fn open_in_browser(url: &str, no_open: bool) {
    if !wants_browser(no_open) {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let started = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if started.is_err() {
        eprintln!("(could not start `{opener}`: open the link yourself)");
    }
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
    pub info: Option<crate::api::Info>,
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
            let info = crate::client::remote::Remote::new(d.clone()).info()?;
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
