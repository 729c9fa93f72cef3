//! Interactive commands driven through a real pseudo-terminal, as a person types them,
//! and when errors are coloured (`NO_COLOR`, `CLICOLOR_FORCE`).

use crate::support::{Env, wasm};

#[test]
fn interactive_register_walks_the_fields_and_enter_keeps_defaults() {
    let env = Env::new();
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    let dir = env.path("alerts");
    let (code, shown) = env.terminal(
        &["alerter", "register", "ops", "--flavor=alerter", "-i"],
        &[
            ("channel (text, required)", "ops-room"),
            ("threshold (integer): How many failures", ""),
            ("path (path, required)", &dir),
        ],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("[3]"),
        "the default is not offered:\n{shown}"
    );
    assert!(shown.contains("Registered alerter `ops`"), "{shown}");
    let d = env.json(&["alerter", "describe", "ops", "--no-status"]);
    let value = |k: &str| {
        d["config"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(value("channel")["value"], "ops-room");
    assert_eq!(value("threshold")["value"], "3");
    assert_eq!(value("threshold")["default"], true);
    assert_eq!(value("path")["value"], dir.as_str());
}

#[test]
fn interactive_register_still_validates_the_answers() {
    let env = Env::new();
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    let before = env.snapshot();
    let (code, shown) = env.terminal(
        &[
            "alerter",
            "register",
            "ops",
            "--flavor=alerter",
            "--interactive",
        ],
        &[
            ("channel (text, required)", "ops"),
            ("threshold (integer)", "1000"),
            ("path (path, required)", &env.path("a")),
        ],
    );
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains("threshold must be between 1 and 100, not 1000"),
        "{shown}"
    );
    assert_eq!(before, env.snapshot());
}

#[test]
fn interactive_secret_values_are_never_echoed() {
    let env = Env::new();
    let canary = "canary-typed-9d2e";
    let (code, shown) = env.terminal(
        &["secret", "create", "db", "-i"],
        &[
            ("key (Enter when done)", "user"),
            ("value of `user` (not shown)", canary),
            ("key (Enter when done)", "password"),
            ("value of `password` (not shown)", "hunter2"),
            ("key (Enter when done)", ""),
        ],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(
        !shown.contains(canary),
        "a typed value was echoed:\n{shown}"
    );
    assert!(
        !shown.contains("hunter2"),
        "a typed value was echoed:\n{shown}"
    );
    assert!(
        shown.contains("Created secret `db` with keys: password, user"),
        "{shown}"
    );
    let s = env.json(&["secret", "get", "db", "--reveal"]);
    assert_eq!(s["values"]["user"], canary);
    assert_eq!(s["values"]["password"], "hunter2");
}

#[test]
fn interactive_secret_refuses_cleanly_without_a_terminal() {
    let env = Env::new();
    let err = env.refused(&["secret", "create", "db", "-i"]);
    assert!(
        err.contains("`-i` asks for the values on a terminal, and standard input is not one"),
        "{err}"
    );
}

/// A bad command run with `vars` and no colour variable inherited; its stderr is a pipe.
fn refused_with(env: &Env, vars: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["stack", "describe", "nowhere"])
        .env("STRATA_HOME", env.home())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("STRATA_OUTPUT")
        .envs(vars.iter().copied())
        .output()
        .expect("the strata binary runs");
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn clicolor_force_colours_errors_on_a_pipe_and_no_color_wins_over_it() {
    let env = Env::new();
    let plain = refused_with(&env, &[]);
    assert!(plain.starts_with("error: "), "{plain:?}");
    let forced = refused_with(&env, &[("CLICOLOR_FORCE", "1")]);
    assert!(
        forced.starts_with("\u{1b}[1m\u{1b}[31merror\u{1b}[0m: "),
        "{forced:?}"
    );
    assert!(forced.contains("\u{1b}[36mhint\u{1b}[0m: "), "{forced:?}");
    let both = refused_with(&env, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert_eq!(both, plain);
    let zero = refused_with(&env, &[("CLICOLOR_FORCE", "0")]);
    assert_eq!(zero, plain);
}

#[test]
fn ctrl_c_at_a_secret_prompt_gives_the_terminal_its_echo_back() {
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::time::{Duration, Instant};

    let env = Env::new();
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
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let echo_on = |fd: &OwnedFd| {
        // SAFETY: termios is plain data, filled by tcgetattr on a descriptor we own.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) }, 0);
        t.c_lflag & libc::ECHO != 0
    };
    assert!(echo_on(&slave));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.args(["secret", "create", "db", "-i"])
        .env("STRATA_HOME", env.home())
        .env("NO_COLOR", "1")
        .env_remove("STRATA_OUTPUT")
        .current_dir(env.work.path())
        .stdin(slave.try_clone().expect("dup"))
        .stdout(slave.try_clone().expect("dup"))
        .stderr(slave.try_clone().expect("dup"));
    // SAFETY: setsid and ioctl are async-signal-safe. The child leads a new session whose
    // controlling terminal is the pty, so the pty's Ctrl-C reaches it as SIGINT.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("the strata binary runs");
    let mut writer = std::fs::File::from(master.try_clone().expect("dup"));
    let mut reader = std::fs::File::from(master);
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut shown = String::new();
    let mut wait_for = |prompt: &str| {
        while !shown.contains(prompt) {
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("never asked `{prompt}`:\n{shown}"));
            shown.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    wait_for("key (Enter when done): ");
    writer.write_all(b"k\r").expect("typing");
    wait_for("value of `k` (not shown): ");
    assert!(!echo_on(&slave), "echo is on at the secret prompt");
    writer.write_all(b"\x03").expect("typing Ctrl-C");
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for strata") {
            break status;
        }
        assert!(Instant::now() < deadline, "Ctrl-C did not end strata");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert!(echo_on(&slave), "Ctrl-C left the terminal without echo");
}
