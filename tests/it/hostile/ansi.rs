//! Class 4 of issue 13: terminal escapes. The fixture `ansi` (an orchestrator) puts
//! escape sequences in every string it hands strata; names and keys with control
//! characters are refused on every path. Nothing a flavor or a request says may reach
//! the terminal as a control character, and `--output json|yaml` keep it exact.

use crate::support::{Env, Run, wasm};

/// What the fixture puts in every string (a copy of `HOSTILE` in
/// flavors/fixtures/ansi/src/lib.rs).
const HOSTILE: &str = "\u{1b}]0;owned by ansi\u{7}\u{1b}]52;c;c3RyYXRhIHB3bmVk\u{7}\u{1b}[2J\u{1b}[H\rStack `default` is up.\nStack `default` is up.\u{202e}desrever\u{202c}\u{9b}31m";

/// The shorter attack in its version.
const SHORT: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\rStack `default` is up.\u{202e}";

/// The characters that must never reach a terminal raw: ESC, BEL, CSI (C1), CR, and the
/// bidi override and pop.
const RAW: [char; 6] = ['\u{1b}', '\u{7}', '\u{9b}', '\r', '\u{202e}', '\u{202c}'];

/// Asserts that `text` (what strata printed for `what`) holds no raw control character
/// and no line that passes for strata's own `Stack … is up.`.
fn assert_clean_text(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|c| RAW.contains(c)) {
        panic!(
            "{what} printed U+{:04X} raw:\n{}",
            c as u32,
            text.escape_debug()
        );
    }
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("Stack `default` is up.")),
        "{what} printed a line that passes for strata's own:\n{text}"
    );
}

/// [`assert_clean_text`] on both streams of a run.
fn assert_clean(what: &str, r: &Run) {
    assert_clean_text(&format!("{what} (stdout)"), &r.stdout);
    assert_clean_text(&format!("{what} (stderr)"), &r.stderr);
}

/// Runs `args`, checks both streams are clean and the exit code is `code`.
fn run(env: &Env, args: &[&str], code: i32) -> Run {
    let r = env.run(args);
    assert_clean(&format!("`strata {}`", args.join(" ")), &r);
    assert_eq!(
        r.code,
        code,
        "`strata {}`:\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        r.stdout,
        r.stderr
    );
    r
}

/// The escapes are shown: the clipboard write (OSC 52) appears as text.
fn shows_escapes(what: &str, text: &str) {
    assert!(
        text.contains("\\u{1b}]52;c;c3RyYXRhIHB3bmVk\\u{7}") && text.contains("\\r"),
        "{what} does not show the escapes as text:\n{text}"
    );
}

/// `strata … --output json`, parsed; the raw text must be clean too.
fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    let r = run(env, &a, 0);
    serde_json::from_str(&r.stdout).expect("valid JSON")
}

#[test]
fn escapes_from_a_flavor_are_shown_never_obeyed() {
    let env = Env::new();
    let r = run(
        &env,
        &["orchestrator", "flavor", "register", &wasm("fixture_ansi")],
        0,
    );
    assert!(r.stderr.contains("Registered orchestrator flavor `ansi`"));

    // Lists and descriptions.
    run(&env, &["flavor", "list"], 0);
    run(&env, &["orchestrator", "flavor", "list"], 0);
    let d = run(&env, &["orchestrator", "flavor", "describe", "ansi"], 0);
    shows_escapes("flavor describe", &d.stdout);
    for part in [
        "6.6.6\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\rStack",
        "it stores nothing itself.\\u{1b}",
    ] {
        assert!(d.stdout.contains(part), "{part} missing:\n{}", d.stdout);
    }

    // --output json and yaml: exact.
    let j = json(&env, &["orchestrator", "flavor", "describe", "ansi"]);
    let info = &j["info"];
    assert_eq!(info["version"], format!("6.6.6{SHORT}"), "{j}");
    assert_eq!(
        info["description"],
        format!("Test fixture: escape sequences everywhere.{HOSTILE}")
    );
    assert_eq!(info["config"][0]["default"], format!("note{HOSTILE}"));
    assert_eq!(
        info["requirements"][0]["reason"],
        format!("it stores nothing itself.{HOSTILE}")
    );
    let y = run(
        &env,
        &[
            "orchestrator",
            "flavor",
            "describe",
            "ansi",
            "--output",
            "yaml",
        ],
        0,
    );
    let y: serde_json::Value = serde_norway::from_str(&y.stdout).expect("valid YAML");
    assert_eq!(y, j, "YAML and JSON say different things");

    // A component: register, describe (status detail), up and down with --verbose logs.
    run(
        &env,
        &["orchestrator", "register", "evil", "--flavor=ansi"],
        0,
    );
    let d = run(&env, &["orchestrator", "describe", "evil"], 0);
    shows_escapes("component describe", &d.stdout);
    let j = json(&env, &["orchestrator", "describe", "evil"]);
    assert_eq!(
        j["status"]["Ok"]["detail"],
        format!("status{HOSTILE}"),
        "{j}"
    );
    run(&env, &["orchestrator", "list"], 0);
    let up = run(&env, &["orchestrator", "up", "evil", "--verbose"], 0);
    shows_escapes("up --verbose", &up.stderr);
    assert!(up.stderr.contains("log: "), "{}", up.stderr);
    assert!(up.stderr.contains("Orchestrator `evil` is up."));
    let down = run(&env, &["orchestrator", "down", "evil", "--verbose"], 0);
    shows_escapes("down --verbose", &down.stderr);

    // A pipeline run on a stack of it: the launch report, and the logs.
    run(
        &env,
        &[
            "stack", "register", "evil", "-o", "evil", "-a", "default", "--set",
        ],
        0,
    );
    run(&env, &["stack", "up", "--verbose"], 0);
    let pipeline = env.path("p.yaml");
    std::fs::write(
        &pipeline,
        "name: training\nsteps:\n  - name: load\n  - name: train\n    upstream: [load]\n",
    )
    .unwrap();
    let p = run(
        &env,
        &["pipeline", "run", &pipeline, "--param", "k=v", "--verbose"],
        0,
    );
    shows_escapes("pipeline run", &p.stdout);
    shows_escapes("pipeline run --verbose", &p.stderr);
    let j = json(&env, &["pipeline", "run", &pipeline]);
    assert_eq!(j["launch"]["detail"], format!("launched{HOSTILE}"), "{j}");
    assert_eq!(
        j["launch"]["schedule"],
        serde_json::json!([["load"], ["train"]])
    );

    // Each call failing with the escapes in its error.
    for call in ["launch", "prepare"] {
        let arg = format!("--fail_in={call}");
        run(&env, &["orchestrator", "update", "evil", &arg], 0);
        let r = run(&env, &["pipeline", "run", &pipeline, "--verbose"], 1);
        shows_escapes(&format!("a failed {call}"), &r.stderr);
    }
    let r = run(
        &env,
        &["orchestrator", "update", "evil", "--fail_in=validate"],
        1,
    );
    shows_escapes("validate's errors", &r.stderr);
    run(&env, &["stack", "down", "--force"], 0);
    for call in ["provision", "panic"] {
        let arg = format!("--fail_in={call}");
        run(&env, &["orchestrator", "update", "evil", &arg], 0);
        // The error comes last: nothing after it may pass for `Stack … is up.`.
        let r = run(&env, &["stack", "up"], 1);
        assert!(r.stderr.contains("error: "), "{}", r.stderr);
        assert!(!r.stderr.contains("Stack `evil` is up."), "{}", r.stderr);
        shows_escapes(&format!("stack up failing in {call}"), &r.stderr);
        let r = run(&env, &["stack", "up", "--verbose", "--output", "json"], 1);
        shows_escapes(&format!("stack up --verbose failing in {call}"), &r.stderr);
        let d = run(&env, &["orchestrator", "describe", "evil"], 0);
        assert!(d.stdout.contains("LAST ERROR"), "{}", d.stdout);
    }
    let d = json(&env, &["orchestrator", "describe", "evil"]);
    assert!(
        d["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\u{1b}]0;owned by ansi")),
        "the stored error is kept exact: {d}"
    );

    // Strata keeps working, and a daemon's log holds no raw escape either.
    run(
        &env,
        &["orchestrator", "update", "evil", "--fail_in=nothing"],
        0,
    );
    run(&env, &["stack", "up"], 0);
    run(&env, &["stack", "describe"], 0);
    // A value of the user's own with a bidi override alone (libyaml would print it raw):
    // shown escaped, exported exactly.
    let note = "left\u{202e}thgir";
    run(
        &env,
        &["orchestrator", "update", "evil", &format!("--note={note}")],
        0,
    );
    let d = run(
        &env,
        &["orchestrator", "describe", "evil", "--no-status"],
        0,
    );
    assert!(d.stdout.contains("left\\u{202e}thgir"), "{}", d.stdout);
    let export = run(&env, &["stack", "export", "evil", "-"], 0);
    let doc: serde_json::Value = serde_norway::from_str(&export.stdout).expect("valid YAML");
    assert!(
        doc.to_string()
            .contains(&serde_json::to_string(note).unwrap()),
        "the export does not keep the value exactly:\n{}",
        export.stdout
    );
    run(&env, &["stack", "down", "--force"], 0);
    let log = std::fs::read_to_string(env.work.path().join("daemon.log")).unwrap_or_default();
    assert_eq!(env.daemon_pid().is_some(), !log.is_empty());
    assert_clean_text("the daemon's log", &log);
}

#[test]
fn names_and_keys_with_control_characters_are_refused_on_the_cli() {
    let env = Env::new();
    env.ok(&["secret", "create", "ok", "--k=v"]);
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    let pipeline = env.path("p.yaml");
    std::fs::write(&pipeline, "name: p\nsteps:\n  - name: a\n").unwrap();
    let bad_step = env.path("bad.yaml");
    std::fs::write(&bad_step, "name: p\nsteps:\n  - name: \"a\\e[2J\"\n").unwrap();
    let values = format!(
        "--values={}",
        serde_json::json!({ "a\u{1b}]52;c;eA==\u{7}": "v" })
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["secret", "create", "s", "--a\u{1b}[2Jb=v"],
            "secret key",
        ),
        (vec!["secret", "create", "s", values.as_str()], "secret key"),
        (
            vec!["secret", "create", "s\u{1b}[2J", "--k=v"],
            "secret name",
        ),
        (vec!["secret", "update", "ok", "--k\r=v"], "secret key"),
        (
            vec!["secret", "update", "ok", "--k\u{202e}=v"],
            "secret key",
        ),
        (vec!["secret", "rename", "ok", "x\u{7}"], "secret name"),
        (
            vec![
                "stack", "register", "s\rStack", "-o", "default", "-a", "default",
            ],
            "stack name",
        ),
        (
            vec!["alerter", "register", "c\u{9b}", "--flavor=alerter"],
            "alerter name",
        ),
        (
            vec!["orchestrator", "update", "default", "--no\u{1b}te=1"],
            "config key",
        ),
        (
            vec!["orchestrator", "remove-attribute", "default", "k\u{1b}"],
            "config key",
        ),
        (
            vec!["pipeline", "run", pipeline.as_str(), "--param", "k\u{1b}=v"],
            "runtime parameter key",
        ),
        (vec!["pipeline", "run", bad_step.as_str()], "step name"),
    ];
    for (args, field) in cases {
        let before = env.snapshot();
        let r = env.run(&args);
        assert_clean(&format!("{args:?}"), &r);
        assert_eq!(r.code, 1, "{args:?} was not refused:\n{}", r.stderr);
        assert!(
            r.stderr.contains(field) && r.stderr.contains("control character"),
            "{args:?}: the error does not name the {field} and the character:\n{}",
            r.stderr
        );
        assert!(r.stderr.contains("\nhint: "), "{}", r.stderr);
        assert_eq!(before, env.snapshot(), "{args:?} changed the stored state");
    }
    let s = env.json(&["secret", "get", "ok", "--reveal"]);
    assert_eq!(s["values"], serde_json::json!({ "k": "v" }));
    // A usage error quotes the argument: made visible too.
    let r = env.run(&["stack", "list", "\u{1b}]0;x\u{7}"]);
    assert_clean("a usage error", &r);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("unexpected argument") && !r.stderr.contains("]0;x\u{7}"),
        "{}",
        r.stderr
    );
    let r = env.run(&["stack", "list", "a\rb\u{202e}c"]);
    assert_clean("a usage error", &r);
    assert!(r.stderr.contains("a\\rb\\u{202e}c"), "{}", r.stderr);
    // An argument that is not UTF-8 at all (a raw C1 CSI byte) is refused, not a panic.
    use std::os::unix::ffi::OsStrExt;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["secret", "create", "s"])
        .arg(std::ffi::OsStr::from_bytes(b"--k\x9b2J=v"))
        .env("STRATA_HOME", env.home())
        .env("NO_COLOR", "1")
        .output()
        .expect("the strata binary runs");
    let stderr = String::from_utf8(out.stderr).expect("strata writes UTF-8");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!out.stdout.contains(&0x9b), "a raw byte 0x9b on stdout");
    assert!(
        stderr.contains("is not valid UTF-8") && stderr.contains("\\x9B"),
        "{stderr}"
    );
    assert!(
        env.json(&["secret", "list"])
            .as_array()
            .is_some_and(|a| a.len() == 1)
    );
}

/// A minimal client of the daemon's REST API.
struct Rest {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Rest {
    fn of(env: &Env) -> Rest {
        let (address, token) = env.daemon_file();
        Rest {
            base: format!("http://{address}"),
            token: format!("Bearer {token}"),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.send("GET", path, None)
    }

    fn upload(&self, path: &str, bytes: &[u8]) -> (u16, String) {
        let mut r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", &self.token)
            .header("Content-Type", "application/wasm")
            .send(bytes)
            .expect("the daemon answers");
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().expect("a body"))
    }

    fn send(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let r = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .header("Authorization", &self.token)
                .call(),
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &self.token)
                .send_json(b),
            ("PATCH", Some(b)) => self
                .agent
                .patch(&url)
                .header("Authorization", &self.token)
                .send_json(b),
            other => panic!("no such request in this test: {other:?}"),
        };
        let mut r = r.expect("the daemon answers");
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().expect("a body"))
    }
}

#[test]
fn names_and_keys_with_control_characters_are_refused_over_rest() {
    let env = Env::embedded().with_daemon();
    env.ok(&["secret", "create", "ok", "--k=v"]);
    let pipeline = serde_json::json!({ "name": "p", "steps": [{ "name": "a" }] });
    let api = Rest::of(&env);
    let cases = [
        (
            "POST",
            "/api/v1/secrets",
            serde_json::json!({ "name": "s", "values": { "a\u{1b}]52;c;eA==\u{7}": "v" } }),
        ),
        (
            "POST",
            "/api/v1/secrets",
            serde_json::json!({ "name": "s\u{1b}[2J", "values": { "k": "v" } }),
        ),
        (
            "PATCH",
            "/api/v1/secrets/ok",
            serde_json::json!({ "values": { "k\r": "v" } }),
        ),
        (
            "POST",
            "/api/v1/stacks",
            serde_json::json!({ "name": "s\u{9b}", "components": { "orchestrator": "default", "artifact-store": "default" } }),
        ),
        (
            "POST",
            "/api/v1/pipelines/run",
            serde_json::json!({ "pipeline": pipeline, "params": { "k\u{202e}": "v" } }),
        ),
    ];
    for (method, path, body) in cases {
        let before = env.snapshot();
        let (status, text) = api.send(method, path, Some(body.clone()));
        assert!(
            status == 400 || status == 422,
            "{method} {path} {body}: {status} {text}"
        );
        assert!(
            !text.contains(RAW),
            "the error holds a raw control character: {text}"
        );
        let e: serde_json::Value = serde_json::from_str(&text).expect("a JSON error");
        let message = e["error"]["message"].as_str().expect("error.message");
        assert!(
            message.contains("control character"),
            "{method} {path}: {text}"
        );
        assert!(
            e["error"]["code"].is_string() && e["error"]["hint"].is_string(),
            "{text}"
        );
        assert_eq!(
            before,
            env.snapshot(),
            "{method} {path} changed the stored state"
        );
    }
    // An upload's `filename` (shown as its source) is a name too.
    let wasm_bytes = std::fs::read(wasm("fixture_ansi")).expect("the fixture");
    let before = env.snapshot();
    let (status, text) = api.upload(
        "/api/v1/flavors/orchestrator?filename=a%1B%5D0%3Bx%07.wasm",
        &wasm_bytes,
    );
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("filename") && text.contains("control character"),
        "{text}"
    );
    assert_eq!(
        before,
        env.snapshot(),
        "a refused upload changed the stored state"
    );
    let (status, text) = api.get("/api/v1/secrets/ok?reveal=true");
    assert_eq!(status, 200, "{text}");
    let s: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s["values"], serde_json::json!({ "k": "v" }));
}

#[test]
fn interactive_prompts_show_a_flavors_escapes() {
    let env = Env::new();
    env.ok(&["orchestrator", "flavor", "register", &wasm("fixture_ansi")]);
    let (code, shown) = env.terminal(
        &["orchestrator", "register", "evil", "--flavor=ansi", "-i"],
        &[("note (text): ", ""), ("fail_in (text): ", "")],
    );
    assert_eq!(code, 0, "{shown}");
    if let Some(c) = shown
        .chars()
        .find(|c| ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'].contains(c))
    {
        panic!(
            "the prompt printed U+{:04X} raw:\n{}",
            c as u32,
            shown.escape_debug()
        );
    }
    assert!(
        shown.contains("Free text, ignored.\\u{1b}]0;owned by ansi")
            && shown.contains("[note\\u{1b}]0;owned by ansi"),
        "{shown}"
    );
}
