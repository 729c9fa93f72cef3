//! Running the real binary against a throwaway home.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh `STRATA_HOME` and a working directory, both removed when dropped.
pub struct Env {
    home: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

/// What a run printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    pub fn new() -> Env {
        Env {
            home: tempfile::tempdir().expect("temp home"),
            work: tempfile::tempdir().expect("temp work dir"),
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A path inside the working directory.
    pub fn path(&self, rel: &str) -> String {
        self.work.path().join(rel).display().to_string()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .env("STRATA_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env_remove("STRATA_OUTPUT")
            .env_remove("RUST_BACKTRACE")
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
        // SAFETY: both descriptors were just opened and belong to nothing else.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .env("STRATA_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env_remove("STRATA_OUTPUT")
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
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/release")
        });
    let p = dir.join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: build the flavors and fixtures with `make flavors`",
        p.display()
    );
    p.display().to_string()
}
