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
