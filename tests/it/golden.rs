//! Golden files (insta snapshots in `snapshots/`) of what a person reads:
//!
//! - `--help` of `strata` and of every command and subcommand under it, found by walking
//!   the `Commands:` lists of the real binary's help; one snapshot per top-level command.
//! - the `error:` / `hint:` text of a representative set of bad inputs (from `rules` and
//!   `edits`), with temp paths, the fixtures' directory and hashes redacted.
//!
//! Both are the same in-process and through a daemon (`STRATA_TEST_DAEMON=1`). Help is
//! printed 100 columns wide whatever the terminal. A change shows as a diff: review it
//! with `cargo insta review`, or rerun with `INSTA_UPDATE=always` and read `git diff`.

use std::process::Command;

use crate::support::{Env, wasm};

/// `strata ARGS --help`, 100 columns wide, with nothing of the caller's environment that
/// help shows (`STRATA_OUTPUT`, colour).
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .arg("--help")
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1")
        .env_remove("STRATA_OUTPUT")
        .env_remove("STRATA_HOME")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("the strata binary runs");
    assert!(
        out.status.success(),
        "strata {} --help failed",
        args.join(" ")
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The names in the `Commands:` list of a help text, but `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// `$ strata ARGS --help` and its text, for `args` and every command under it.
fn help_tree(args: &mut Vec<String>, out: &mut String) {
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = help(&argv);
    out.push_str(&format!("$ strata {} --help\n{text}\n", args.join(" ")));
    for sub in subcommands(&text) {
        args.push(sub);
        help_tree(args, out);
        args.pop();
    }
}

#[test]
fn help_of_every_command_is_as_recorded() {
    let top = help(&[]);
    insta::assert_snapshot!("help", top);
    let commands = subcommands(&top);
    assert!(commands.len() > 20, "{commands:?}");
    for command in commands {
        let mut text = String::new();
        help_tree(&mut vec![command.clone()], &mut text);
        insta::assert_snapshot!(format!("help-{command}"), text);
    }
}

/// Regex for `text` taken literally.
fn literal(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
            | '#' | '&' | '-' | '~' => vec!['\\', c],
            _ => vec![c],
        })
        .collect()
}

#[test]
fn errors_of_bad_inputs_are_as_recorded() {
    let env = Env::new();
    let path = |p: &str| format!("--path={}", env.path(p));
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    env.ok(&[
        "alerter",
        "register",
        "ops",
        "--flavor=alerter",
        "--channel=ops",
        "--threshold=5",
        &path("ops"),
    ]);
    env.ok(&[
        "artifact-store",
        "register",
        "my_store",
        "--flavor=local",
        &path("store"),
    ]);
    env.ok(&[
        "stack", "register", "s", "-o", "default", "-a", "my_store", "--set",
    ]);
    let text = env.path("notes.txt");
    std::fs::write(&text, "hello").expect("writing notes.txt");
    let module = env.path("core.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").expect("writing core.wasm");
    let home = env.home().display().to_string();

    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "stack-without-orchestrator",
            vec!["stack", "register", "s2", "-a", "default"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "stack-without-artifact-store",
            vec!["stack", "register", "s2", "-o", "default"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "stack-type-given-twice",
            vec![
                "stack", "register", "s2", "-o", "default", "-a", "default", "-a", "my_store",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
        (
            "stack-missing-component",
            vec!["stack", "register", "s2", "-o", "default", "-a", "nope"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "stack-missing-metadata-store",
            vec![
                "stack", "register", "s2", "-o", "default", "-a", "default", "-m", "meta",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
        (
            "unknown-flavor",
            vec![
                "artifact-store".into(),
                "register".into(),
                "x".into(),
                "--flavor=s3".into(),
                path("x"),
            ],
        ),
        (
            "no-flavor",
            vec!["artifact-store", "register", "x", "--path=/tmp/x"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "unknown-config-key",
            vec![
                "artifact-store".into(),
                "register".into(),
                "x".into(),
                "--flavor=local".into(),
                path("x"),
                "--colour=red".into(),
            ],
        ),
        (
            "missing-required-field",
            vec!["artifact-store", "register", "x", "--flavor=local"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "wrong-kind-of-value",
            vec![
                "alerter".into(),
                "register".into(),
                "a".into(),
                "--flavor=alerter".into(),
                "--channel=ops".into(),
                "--threshold=lots".into(),
                path("a"),
            ],
        ),
        (
            "flavor-validation",
            vec![
                "alerter".into(),
                "register".into(),
                "a".into(),
                "--flavor=alerter".into(),
                "--channel=ops".into(),
                "--threshold=500".into(),
                path("a"),
            ],
        ),
        (
            "unsupported-scheme",
            vec![
                "artifact-store",
                "register",
                "x",
                "--flavor=local",
                "--path=s3://bucket/x",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
        (
            "grant-of-the-whole-disk",
            vec![
                "artifact-store",
                "register",
                "x",
                "--flavor=local",
                "--path=/",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
        (
            "grant-of-the-home",
            vec![
                "artifact-store".into(),
                "register".into(),
                "x".into(),
                "--flavor=local".into(),
                format!("--path={home}"),
            ],
        ),
        (
            "duplicate-component",
            vec![
                "artifact-store".into(),
                "register".into(),
                "my_store".into(),
                "--flavor=local".into(),
                path("other"),
            ],
        ),
        (
            "duplicate-stack",
            vec!["stack", "register", "s", "-o", "default", "-a", "default"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "bad-name",
            vec![
                "artifact-store",
                "register",
                "bad name",
                "--flavor=local",
                "--path=/tmp/x",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
        (
            "config-key-twice",
            vec![
                "artifact-store",
                "register",
                "x",
                "--flavor=local",
                "--path=/tmp/a",
                "--path=/tmp/b",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
        (
            "delete-component-in-use",
            vec!["artifact-store", "delete", "my_store"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "delete-active-stack",
            vec!["stack", "delete", "s"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "delete-default-stack",
            vec!["stack", "delete", "default"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "delete-default-orchestrator",
            vec!["orchestrator", "delete", "default"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "delete-built-in-flavor",
            vec!["artifact-store", "flavor", "delete", "local"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "delete-flavor-in-use",
            vec!["alerter", "flavor", "delete", "alerter"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "set-missing-stack",
            vec!["stack", "set", "nope"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "register-a-text-file",
            vec![
                "alerter".into(),
                "flavor".into(),
                "register".into(),
                text.clone(),
            ],
        ),
        (
            "register-a-core-module",
            vec![
                "alerter".into(),
                "flavor".into(),
                "register".into(),
                module.clone(),
            ],
        ),
        (
            "register-a-missing-file",
            vec![
                "alerter".into(),
                "flavor".into(),
                "register".into(),
                env.path("missing.wasm"),
            ],
        ),
        (
            "update-out-of-range",
            vec!["alerter", "update", "ops", "--threshold=1000"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "update-unknown-key",
            vec!["alerter", "update", "ops", "--colour=red"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "remove-required-attribute",
            vec!["alerter", "remove-attribute", "ops", "channel"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "rename-default-orchestrator",
            vec!["orchestrator", "rename", "default", "x"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "update-stack-missing-component",
            vec!["stack", "update", "s", "-a", "nope"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        (
            "remove-required-component",
            vec!["stack", "remove-component", "s", "-a", "my_store"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
    ];

    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&literal(&env.work.path().display().to_string()), "[WORK]");
    settings.add_filter(&literal(&home), "[HOME]");
    let flavors = std::path::Path::new(&wasm("fixture_alerter"))
        .parent()
        .expect("the fixtures' directory")
        .display()
        .to_string();
    settings.add_filter(&literal(&flavors), "[FLAVORS]");
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[SHA256]");
    settings.add_filter(
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        "[UUID]",
    );
    let work = env.work.path().display().to_string();
    settings.bind(|| {
        for (name, args) in &cases {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let err = env.fail(&args);
            // The command, as the snapshot's header says it (filters redact only its body).
            let command = format!("strata {}", args.join(" "))
                .replace(&work, "[WORK]")
                .replace(&home, "[HOME]");
            insta::assert_snapshot!(format!("error-{name}"), err, &command);
        }
    });
}
