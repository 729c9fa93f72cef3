//! The CLI's side: find the daemon that serves a home, and send it a command line.

use std::io::BufRead;
use std::time::Duration;

use super::DaemonFile;
use super::server::{Frame, Info};
use crate::cli::{Cli, Command, ComponentCmd, Format, SecretCmd};
use crate::error::{Error, Result};
use crate::home::Home;

/// What serves a home.
pub enum Found {
    /// No daemon: the CLI opens the home itself.
    None,
    /// A daemon that answers.
    Daemon(Conn),
    /// A daemon holds the home but this command may not (or cannot) use it.
    Unreachable(Error),
}

/// Looks for a live daemon of `home`. `STRATA_NO_DAEMON=1` asks for the home to be
/// opened in-process, which is refused while a daemon holds it.
pub fn find(home: &Home) -> Found {
    let d = match DaemonFile::read(home) {
        Some(d) if d.is_running() => d,
        // A daemon that holds its lock but has not written its file yet is opening the
        // store: wait for it rather than fail on the store's lock.
        _ if super::DaemonLock::holder(home).is_some() => match wait_for_file(home) {
            Waited::Listening(d) => d,
            Waited::Ended => return Found::None,
            Waited::Timeout => {
                return Found::Unreachable(Error::invalid(
                    format!(
                        "a strata daemon is starting for {} and has not begun to listen within 30 s",
                        home.root().display()
                    ),
                    "see `strata daemon logs`, and try again when `strata daemon status` shows it running",
                ));
            }
        },
        _ => return Found::None,
    };
    if std::env::var_os("STRATA_NO_DAEMON").is_some_and(|v| !v.is_empty() && v != "0") {
        return Found::Unreachable(Error::invalid(
            format!(
                "a strata daemon (pid {}, http://{}) holds {}, and STRATA_NO_DAEMON asks not to use it",
                d.pid,
                d.address,
                home.root().display()
            ),
            "unset STRATA_NO_DAEMON so that the command goes through the daemon, or stop it with `strata daemon stop`",
        ));
    }
    Found::Daemon(Conn::new(d))
}

enum Waited {
    Listening(DaemonFile),
    /// The daemon let go of the home (it failed to start, or stopped).
    Ended,
    Timeout,
}

/// Waits up to 30 s for a daemon that is starting to write its file.
fn wait_for_file(home: &Home) -> Waited {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some(d) = DaemonFile::read(home).filter(DaemonFile::is_running) {
            return Waited::Listening(d);
        }
        if super::DaemonLock::holder(home).is_none() {
            return Waited::Ended;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Waited::Timeout
}

/// A daemon to talk to.
pub struct Conn {
    file: DaemonFile,
    agent: ureq::Agent,
}

impl Conn {
    pub fn new(file: DaemonFile) -> Conn {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            // Every route answers its headers at once (`/api/v1/cli` then streams), so a
            // daemon that takes this long to answer at all is stuck.
            .timeout_recv_response(Some(Duration::from_secs(30)))
            // The daemon closes a connection idle for 10 s: reuse one for less than that.
            .max_idle_age(Duration::from_secs(5))
            .build()
            .into();
        Conn { file, agent }
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> Error {
        Error::invalid(
            format!(
                "the strata daemon (pid {}) at http://{} does not answer: {e}",
                self.file.pid, self.file.address
            ),
            "see `strata daemon logs`; `strata daemon stop` then `strata daemon start` restarts it",
        )
    }

    /// `GET /api/v1/daemon`.
    pub fn info(&self) -> Result<Info> {
        let mut resp = self
            .agent
            .get(self.file.url("/api/v1/daemon"))
            .header("Authorization", &format!("Bearer {}", self.file.token))
            .call()
            .map_err(|e| self.unreachable(e))?;
        resp.body_mut()
            .read_json::<Info>()
            .map_err(|e| self.unreachable(e))
    }

    /// Sends a command line to the daemon and prints what it prints, as it prints it.
    /// Returns the command's exit code.
    pub fn forward(&self, cli: &Cli, argv: &[String], color: bool) -> u8 {
        match self.try_forward(cli, argv, color) {
            Ok(code) => code,
            Err(e) => {
                eprint!("{}", crate::cli::run::render_error(&e, color));
                crate::cli::run::exit_code(&e)
            }
        }
    }

    fn try_forward(&self, cli: &Cli, argv: &[String], color: bool) -> Result<u8> {
        let mut argv: Vec<String> = argv.iter().skip(1).cloned().collect();
        self.ask_here(cli, &mut argv)?;
        let cwd =
            std::env::current_dir().map_err(|e| Error::io("reading the current directory", e))?;
        let output = match cli.output {
            Format::Table => "table",
            Format::Json => "json",
            Format::Yaml => "yaml",
        };
        let resp = self
            .agent
            .post(self.file.url("/api/v1/cli"))
            .header("Authorization", &format!("Bearer {}", self.file.token))
            .send_json(serde_json::json!({
                "argv": argv,
                "cwd": cwd,
                "output": output,
                "color": color,
            }))
            .map_err(|e| self.unreachable(e))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp
                .into_body()
                .read_to_string()
                .unwrap_or_else(|e| e.to_string());
            return Err(self.unreachable(format!("HTTP {status}: {text}")));
        }
        let reader = std::io::BufReader::new(resp.into_body().into_reader());
        let sink = crate::cli::run::Terminal;
        let cut_off = || {
            Error::invalid(
                "the daemon closed the connection before the command finished (was it stopped?)",
                "the command may or may not have taken effect: check with `list` or `describe`, then run it again",
            )
        };
        for line in reader.lines() {
            let Ok(line) = line else {
                return Err(cut_off());
            };
            match serde_json::from_str::<Frame>(&line) {
                Ok(Frame::Out(t)) => crate::cli::run::Sink::stdout(&sink, &t),
                Ok(Frame::Err(t)) => crate::cli::run::Sink::stderr(&sink, &t),
                Ok(Frame::Exit(code)) => return Ok(code),
                Err(e) => return Err(self.unreachable(format!("a garbled answer ({e})"))),
            }
        }
        Err(cut_off())
    }

    /// `-i` asks its questions on this terminal, then sends the answers as arguments.
    fn ask_here(&self, cli: &Cli, argv: &mut Vec<String>) -> Result<()> {
        let interactive = |args: &[String]| args.iter().any(|a| a == "-i" || a == "--interactive");
        let strip = |argv: &mut Vec<String>| argv.retain(|a| a != "-i" && a != "--interactive");
        match &cli.command {
            Command::Secret(
                SecretCmd::Create { values, .. } | SecretCmd::Update { values, .. },
            ) if interactive(values) => {
                let mut answers = Default::default();
                crate::cli::run::ask_secret_values(&mut answers)?;
                strip(argv);
                argv.push(format!(
                    "--values={}",
                    serde_json::to_string(&answers).expect("invariant: serializes")
                ));
            }
            c => {
                let Some((t, ComponentCmd::Register(args))) = c.component() else {
                    return Ok(());
                };
                let r = crate::cli::run::parse_register(t, args)?;
                if !r.interactive {
                    return Ok(());
                }
                let flavor = r.flavor;
                let mut resp = self
                    .agent
                    .get(self.file.url(&format!("/api/v1/flavors/{t}/{flavor}")))
                    .header("Authorization", &format!("Bearer {}", self.file.token))
                    .call()
                    .map_err(|e| self.unreachable(e))?;
                if !resp.status().is_success() {
                    // Let the daemon say what is wrong with the flavor, as it would anyway.
                    strip(argv);
                    return Ok(());
                }
                let f: crate::model::FlavorRecord = resp
                    .body_mut()
                    .read_json()
                    .map_err(|e| self.unreachable(e))?;
                let given = r.config;
                let mut config = given.clone();
                crate::cli::run::ask_fields(&f, &mut config)?;
                strip(argv);
                for (k, v) in config {
                    if !given.contains_key(&k) {
                        argv.push(format!("--{k}={v}"));
                    }
                }
            }
        }
        Ok(())
    }
}
