//! Running the real binary against a throwaway home.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh `STRATA_HOME` and a working directory, both removed when dropped. With
/// `STRATA_TEST_DAEMON=1` (the second pass of `make test`) each home also gets a real
/// daemon, so every command of the suite goes through it.
pub struct Env {
    home: tempfile::TempDir,
    pub work: tempfile::TempDir,
    daemon: Option<std::process::Child>,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            // SAFETY: SIGTERM to the daemon this Env started.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }
}

/// What a run printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    /// A fresh home; served by a daemon when the suite runs with `STRATA_TEST_DAEMON=1`.
    pub fn new() -> Env {
        let env = Env::embedded();
        if std::env::var_os("STRATA_TEST_DAEMON").is_some_and(|v| v == "1") {
            env.with_daemon()
        } else {
            env
        }
    }

    /// A fresh home that commands open in-process (for tests about that case).
    pub fn embedded() -> Env {
        Env {
            home: tempfile::tempdir().expect("temp home"),
            work: tempfile::tempdir().expect("temp work dir"),
            daemon: None,
        }
    }

    /// Whether a daemon serves this home.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(|c| c.id())
    }

    /// Starts `strata daemon start --foreground` on this home and waits until it listens.
    pub fn with_daemon(self) -> Env {
        self.with_daemon_grace(3000)
    }

    /// Waits for this home's daemon to end (a test stopped it), then goes on in-process.
    pub fn without_daemon(mut self) -> Env {
        if let Some(mut child) = self.daemon.take() {
            child.wait().expect("the daemon ends");
        }
        self
    }

    /// [`Env::with_daemon`] with a grace period of `grace_ms` on stop.
    pub fn with_daemon_grace(mut self, grace_ms: u64) -> Env {
        let log = std::fs::File::create(self.work.path().join("daemon.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["daemon", "start", "--foreground"])
            .arg(format!("--grace-ms={grace_ms}"))
            .env("STRATA_HOME", self.home.path())
            .env_remove("STRATA_OUTPUT")
            .env_remove("RUST_LOG")
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("the strata binary runs");
        let pid = child.id();
        self.daemon = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let file = std::fs::read_to_string(self.home().join("daemon.json")).unwrap_or_default();
            if serde_json::from_str::<serde_json::Value>(&file)
                .is_ok_and(|d| d["pid"].as_u64() == Some(u64::from(pid)))
            {
                return self;
            }
            let exited = self
                .daemon
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && std::time::Instant::now() < deadline,
                "the daemon did not start ({exited:?}):\n{}",
                std::fs::read_to_string(self.work.path().join("daemon.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The daemon's address and token, from `daemon.json`.
    pub fn daemon_file(&self) -> (String, String) {
        let d: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(self.home().join("daemon.json")).expect("daemon.json"),
        )
        .expect("daemon.json is JSON");
        (
            d["address"].as_str().expect("address").to_string(),
            d["token"].as_str().expect("token").to_string(),
        )
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A path inside the working directory.
    pub fn path(&self, rel: &str) -> String {
        self.work.path().join(rel).display().to_string()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// [`Env::run`] with extra environment variables.
    pub fn run_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .envs(vars.iter().copied())
            .env("STRATA_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env_remove("STRATA_OUTPUT")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LOG")
            .current_dir(self.work.path())
            .output()
            .expect("the strata binary runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code,
            0,
            "`strata {}` failed:\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// Runs a command that must fail as a user's mistake (exit 1) with `error:` and
    /// `hint:` lines; returns its stderr.
    pub fn fail(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code,
            1,
            "`strata {}` should fail with exit 1:\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        // Progress lines may come first; the error is the last thing said.
        let at = r
            .stderr
            .find("error: ")
            .filter(|&i| i == 0 || r.stderr[..i].ends_with('\n'));
        let Some(at) = at else {
            panic!(
                "no `error:` line for `strata {}`:\n{}",
                args.join(" "),
                r.stderr
            )
        };
        r.stderr[at..].to_string()
    }

    /// Like [`Env::fail`], and the stored state is what it was before.
    pub fn refused(&self, args: &[&str]) -> String {
        let before = self.snapshot();
        let err = self.fail(args);
        assert!(
            err.contains("\nhint: "),
            "no `hint:` for `strata {}`:\n{err}",
            args.join(" ")
        );
        assert_eq!(
            before,
            self.snapshot(),
            "`strata {}` changed the stored state although it failed",
            args.join(" ")
        );
        err
    }

    /// Everything strata stores, as JSON: stacks, components of every type, flavors.
    pub fn snapshot(&self) -> String {
        let mut s = self.ok(&["stack", "list", "--output", "json"]);
        s += &self.ok(&["flavor", "list", "--output", "json"]);
        s += &self.ok(&["secret", "list", "--output", "json"]);
        for t in ["orchestrator", "artifact-store", "alerter", "step-operator"] {
            s += &self.ok(&[t, "list", "--output", "json"]);
        }
        s
    }

    /// Runs strata with a real pseudo-terminal as its stdin, stdout and stderr, as a
    /// person at a terminal would: for each `(prompt, answer)`, waits until `prompt` has
    /// been printed, then types `answer` and Enter. Returns the exit code and everything
    /// the terminal showed (what strata printed and what the terminal echoed).
    pub fn terminal(&self, args: &[&str], dialog: &[(&str, &str)]) -> (i32, String) {
        self.terminal_with(args, dialog, &[])
    }

    /// [`Env::terminal`], with `vars` set in strata's environment.
    pub fn terminal_with(
        &self,
        args: &[&str],
        dialog: &[(&str, &str)],
        vars: &[(&str, &str)],
    ) -> (i32, String) {
        use std::io::{Read, Write};
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::sync::mpsc;
        use std::time::{Duration, Instant};

        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two new descriptors, which are owned below.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty failed: {}", std::io::Error::last_os_error());
        // Neither end may leak into what strata starts (a daemon in the background would
        // hold the terminal open, and the reader below would never see its end).
        for fd in [master, slave] {
            // SAFETY: F_SETFD on a descriptor openpty just gave us.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        // SAFETY: both descriptors were just opened and belong to nothing else.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .env("STRATA_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env_remove("STRATA_OUTPUT")
            .envs(vars.iter().copied())
            .current_dir(self.work.path())
            .stdin(slave.try_clone().expect("dup"))
            .stdout(slave.try_clone().expect("dup"))
            .stderr(slave)
            .spawn()
            .expect("the strata binary runs");
        let mut writer = std::fs::File::from(master.try_clone().expect("dup"));
        let mut reader = std::fs::File::from(master);
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let pump = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child has exited and closed the terminal.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut shown = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = 0;
        for (prompt, answer) in dialog {
            loop {
                let text = String::from_utf8_lossy(&shown[seen..]).into_owned();
                if let Some(at) = text.find(prompt) {
                    seen += at + prompt.len();
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(chunk) => shown.extend(chunk),
                    Err(_) => panic!(
                        "`strata {}` never asked `{prompt}`; the terminal showed:\n{}",
                        args.join(" "),
                        String::from_utf8_lossy(&shown)
                    ),
                }
            }
            writer
                .write_all(format!("{answer}\r").as_bytes())
                .expect("typing into the terminal");
        }
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for strata") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "`strata {}` did not finish",
                args.join(" ")
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        drop(writer);
        pump.join().expect("the terminal reader");
        shown.extend(rx.try_iter().flatten());
        (
            status.code().unwrap_or(-1),
            String::from_utf8_lossy(&shown).replace("\r\n", "\n"),
        )
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("valid JSON")
    }
}

/// A `.wasm` built by `make flavors` (`flavors/` → target/wasm32-wasip2/release).
pub fn wasm(name: &str) -> String {
    let dir = std::env::var_os("STRATA_FLAVORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm32-wasip2/release")
        });
    let p = dir.join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: build the flavors and fixtures with `make flavors`",
        p.display()
    );
    p.display().to_string()
}

/// A Python or JavaScript example flavor built by `make examples` (into target/polyglot).
pub fn example(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/polyglot")
        .join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: build the example flavors with `make examples`",
        p.display()
    );
    p.display().to_string()
}

/// The one `sh` block of the README section marked `<!-- NAME:begin -->` …
/// `<!-- NAME:end -->`, which a test runs as written.
pub fn readme_block(name: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("the README");
    readme
        .split(&format!("<!-- {name}:begin -->"))
        .nth(1)
        .and_then(|s| s.split(&format!("<!-- {name}:end -->")).next())
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|s| s.split("```").next())
        .unwrap_or_else(|| panic!("the README marks section `{name}` with one sh block"))
        .to_string()
}

/// Runs the README block `name` as written (bash, `-euo pipefail`, from the repository's
/// root, with this build's `strata` first on PATH, no strata variables of the caller's
/// and `vars` set), and asserts that it succeeds: its stdout and stderr.
pub fn run_readme(name: &str, vars: &[(&str, &std::ffi::OsStr)]) -> (String, String) {
    let script = readme_block(name);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = Path::new(env!("CARGO_BIN_EXE_strata"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&root)
        // Nothing of the caller's strata: the section sets what it needs, or `vars` do.
        .env_remove("STRATA_HOME")
        .env_remove("STRATA_DATABASE")
        .env_remove("STRATA_CONFIG_DIR")
        .env_remove("STRATA_OUTPUT")
        .envs(vars.iter().copied())
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "the README's `{name}` section failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}
