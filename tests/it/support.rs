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
        for t in ["orchestrator", "artifact-store", "alerter"] {
            s += &self.ok(&[t, "list", "--output", "json"]);
        }
        s
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
