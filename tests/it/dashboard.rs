//! The dashboard in a real Chromium (headless, driven by chromedriver): a daemon with two
//! stacks, a failed and a successful run, a secret, a connector; what a person sees on
//! each page, `up` pressed and the phases changing, the failed step's log, a phone's
//! width and a dark theme. And the rules around it, over plain HTTP: the policy headers,
//! a one-time link used once, the token in a header (no cookie), the `Host` check.
//!
//! With `STRATA_SCREENSHOTS=DIR` the screenshots go to DIR (`docs/dashboard` holds the
//! README's); otherwise to a temp directory, checked and thrown away.

use std::path::PathBuf;

use serde_json::json;

use crate::browser::Browser;
use crate::support::{Env, wasm};

const SECRET_VALUE: &str = "hunter2-c4n4ry-9d1f";
const CONNECTOR_TOKEN: &str = "tok-c4n4ry-77ab";

/// A home served by a daemon, with what each page shows.
fn populated() -> Env {
    let env = Env::embedded().with_daemon();
    std::fs::write(
        env.path("train.yaml"),
        "name: training\nsteps:\n  - name: load\n    run: echo loading; seq 1 5 > data.csv\n    outputs: [data.csv]\n  - name: train\n    run: echo trained on $(wc -l < data.csv) rows > model.txt; cat model.txt\n    inputs: [load.data.csv]\n    outputs: [model.txt]\n  - name: report\n    run: echo report\n    upstream: [train]\n",
    )
    .unwrap();
    std::fs::write(
        env.path("flaky.yaml"),
        "name: flaky\nsteps:\n  - name: fetch\n    run: echo fetching; echo oops, the source is gone >&2; exit 3\n  - name: clean\n    run: echo never\n    upstream: [fetch]\n",
    )
    .unwrap();
    env.ok(&["stack", "up"]);
    env.ok(&["pipeline", "run", "train.yaml"]);
    // The second run reuses every step's outputs.
    env.ok(&["pipeline", "run", "train.yaml"]);
    let flaky = env.run(&["pipeline", "run", "flaky.yaml"]);
    assert!(
        flaky.code == 1 && flaky.stderr.contains("step `fetch` failed"),
        "{}",
        flaky.stderr
    );

    env.ok(&[
        "secret",
        "create",
        "db",
        &format!("--password={SECRET_VALUE}"),
    ]);
    env.ok(&[
        "service-connector",
        "register",
        "hooks",
        "--type",
        "bearer",
        // Nothing listens there: `verify` says so.
        "--endpoint=http://127.0.0.1:9/",
        &format!("--token={CONNECTOR_TOKEN}"),
    ]);
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    let alerts = env.path("alerts");
    env.ok(&[
        "alerter",
        "register",
        "ops",
        "--flavor=alerter",
        "--channel={{db.password}}",
        &format!("--path={alerts}"),
    ]);
    env.ok(&[
        "artifact-store",
        "register",
        "prod_store",
        "--flavor=local",
        &format!("--path={}", env.path("prod-store")),
    ]);
    env.ok(&[
        "stack",
        "register",
        "prod",
        "-o",
        "default",
        "-a",
        "prod_store",
        "--alerter",
        "ops",
    ]);
    env
}

fn shots() -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("STRATA_SCREENSHOTS") {
        Some(d) => (None, PathBuf::from(d)),
        None => {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    }
}

/// The link `strata dashboard` prints.
fn link(env: &Env) -> String {
    let out = env.ok(&["dashboard", "--no-open"]);
    let url = out.trim().to_string();
    let (address, _) = env.daemon_file();
    assert!(
        url.starts_with(&format!("http://{address}/#code=")),
        "{url}"
    );
    url
}

fn no_console_errors(b: &Browser, page: &str) {
    let errors: Vec<String> = b
        .console()
        .into_iter()
        .filter(|l| l.contains("SEVERE") && !l.contains("favicon"))
        .collect();
    assert!(
        errors.is_empty(),
        "the {page} page logged errors: {errors:#?}"
    );
}

#[test]
fn a_person_sees_stacks_runs_logs_and_connectors_and_brings_a_stack_up_in_chromium() {
    let env = populated();
    let (_keep, dir) = shots();
    let b = Browser::start();

    // The link opens the stacks page; the code leaves the address bar.
    b.goto(&link(&env));
    let stacks = b.wait_for("main", 30, |t| t.contains("prod") && t.contains("default"));
    assert!(stacks.contains("★ active"), "{stacks}");
    let default = b.text("section[data-stack=default]");
    assert!(
        default.contains("★ active") && default.contains("running"),
        "{default}"
    );
    let prod = b.text("section[data-stack=prod]");
    for want in ["prod_store", "ops", "alerter", "registered"] {
        assert!(prod.contains(want), "prod lacks {want}: {prod}");
    }
    let here = b.js("return location.href", json!([]));
    assert!(
        !here.as_str().unwrap().contains("code="),
        "the one-time code stays in the address bar: {here}"
    );
    // The live status column fills in from each flavor.
    b.wait_for("section[data-stack=default]", 20, |t| !t.contains("asking"));
    b.screenshot(&dir, "stacks");

    // `up` on prod: progress as it happens, then every phase `running`.
    b.click("section[data-stack=prod] button.primary");
    let prod = b.wait_for("section[data-stack=prod]", 60, |t| {
        t.contains(": done") || t.contains("failed:")
    });
    assert!(prod.contains("provision"), "{prod}");
    assert!(!prod.contains("failed:"), "{prod}");
    let phases = b.js(
        "return [...document.querySelectorAll('section[data-stack=prod] td.phase .badge')].map(e => e.dataset.status)",
        json!([]),
    );
    assert_eq!(phases, json!(["running", "running", "running"]), "{prod}");
    b.screenshot(&dir, "stack-up");
    // The CLI sees what the dashboard did.
    assert_eq!(
        env.json(&["alerter", "describe", "ops"])["phase"],
        "running"
    );
    no_console_errors(&b, "stacks");

    // A component: its configuration names the secret, never its value; its history
    // has the `provision` just made.
    b.click("section[data-stack=prod] a[href='#/component/alerter/ops']");
    let comp = b.wait_for("main", 20, |t| {
        t.contains("Lifecycle history") && t.contains("provision")
    });
    assert!(comp.contains("{{db.password}}"), "{comp}");
    assert!(comp.contains("stack up prod"), "{comp}");
    assert!(
        comp.contains("fixture") || comp.contains("alerter"),
        "{comp}"
    );
    b.screenshot(&dir, "component");

    // Runs: the failed one and the successful one.
    b.goto(&format!("http://{}/#/runs", env.daemon_file().0));
    let runs = b.wait_for("main", 20, |t| {
        t.contains("flaky") && t.contains("training")
    });
    assert!(
        runs.contains("failed") && runs.contains("completed"),
        "{runs}"
    );
    b.screenshot(&dir, "runs");
    let flaky = env.json(&["pipeline", "runs", "list"]);
    let flaky_id = flaky
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["pipeline"] == "flaky")
        .unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    b.click(&format!("a[href='#/run/{flaky_id}']"));
    // The failed step is selected, and its log is what it wrote.
    let log = b.wait_for("#logs", 20, |t| t.contains("oops"));
    assert!(
        log.replace('\n', " ").contains("Log of fetch") && log.contains("fetching"),
        "{log}"
    );
    let run = b.text("main");
    assert!(run.contains("skipped"), "{run}");
    let nodes = b.js(
        "return [...document.querySelectorAll('.graph [data-step]')].map(e => e.getAttribute('aria-label'))",
        json!([]),
    );
    assert_eq!(
        nodes,
        json!(["step fetch: failed", "step clean: skipped"]),
        "{run}"
    );
    assert!(
        b.js(
            "return document.querySelectorAll('.graph path.edge').length",
            json!([])
        ) == 1,
        "one edge: fetch → clean"
    );
    b.screenshot(&dir, "run-failed");

    // The successful run: three steps, their artifacts, the log of another step.
    let training = |cached: u64| {
        flaky
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["pipeline"] == "training" && r["cached"] == cached)
            .unwrap_or_else(|| panic!("a training run with {cached} cached steps: {flaky}"))
            ["run_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ok_id = training(0);
    b.goto(&format!("http://{}/#/run/{ok_id}", env.daemon_file().0));
    let run = b.wait_for("main", 20, |t| {
        t.contains("model.txt") && t.contains("Log of")
    });
    assert!(run.contains("data.csv"), "{run}");
    b.click(".graph [data-step=train]");
    b.wait_for("#logs", 20, |t| t.contains("trained on 5 rows"));
    b.screenshot(&dir, "run");
    // The second run: every step cached, and the run its outputs came from.
    b.goto(&format!(
        "http://{}/#/run/{}",
        env.daemon_file().0,
        training(3)
    ));
    let cached = b.wait_for("main", 20, |t| t.contains("Log of"));
    assert!(cached.contains(&format!("cached from {ok_id}")), "{cached}");
    no_console_errors(&b, "runs");

    // A run under way: its step's log grows on the page while the step runs.
    std::fs::write(
        env.path("slow.yaml"),
        "name: slow\nsteps:\n  - name: wait\n    run: echo first line; sleep 6; echo second line\n",
    )
    .unwrap();
    let mut slow = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["pipeline", "run", "slow.yaml"])
        .env("STRATA_HOME", env.home())
        .current_dir(env.work.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let slow_id = loop {
        let runs = env.json(&["pipeline", "runs", "list", "--pipeline", "slow"]);
        if let Some(id) = runs[0]["run_id"].as_str() {
            break id.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slow run did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    b.goto(&format!("http://{}/#/run/{slow_id}", env.daemon_file().0));
    let live = b.wait_for("#logs", 20, |t| t.contains("first line"));
    assert!(
        live.contains("● live") && !live.contains("second line"),
        "{live}"
    );
    b.wait_for("#logs", 30, |t| t.contains("second line"));
    b.wait_for("main h1", 30, |t| t.contains("completed"));
    assert!(slow.wait().unwrap().success());

    // Flavors, by type, with a schema shown on demand.
    b.goto(&format!("http://{}/#/flavors", env.daemon_file().0));
    let flavors = b.wait_for("main", 20, |t| {
        t.contains("artifact-store") && t.contains("orchestrator")
    });
    assert!(flavors.contains("alerter"), "{flavors}");
    b.click("section[data-type=artifact-store] button");
    let schema = b.wait_for("section[data-type=artifact-store]", 20, |t| {
        t.contains("Configuration")
    });
    assert!(schema.contains("path"), "{schema}");
    b.screenshot(&dir, "flavors");

    // Connectors and secrets: names and uses, `verify`, never a value.
    b.goto(&format!("http://{}/#/connectors", env.daemon_file().0));
    let page = b.wait_for("main", 20, |t| t.contains("hooks") && t.contains("db"));
    let secret = b.text("tr[data-secret=db]");
    assert!(
        secret.contains("password") && secret.contains("ops"),
        "{secret}"
    );
    b.click("tr[data-connector=hooks] button");
    let verified = b.wait_for("tr[data-connector=hooks]", 30, |t| !t.contains("verifying"));
    assert!(verified.contains("unreachable"), "{verified}");
    b.screenshot(&dir, "connectors");
    let html = b.js("return document.documentElement.outerHTML", json!([]));
    for canary in [SECRET_VALUE, CONNECTOR_TOKEN] {
        assert!(
            !html.to_string().contains(canary),
            "a secret on the page: {page}"
        );
    }
    no_console_errors(&b, "connectors");

    // The session is in a header the page's script sends: no cookie at all.
    assert_eq!(b.js("return document.cookie", json!([])), "");

    // A phone's width: nothing wider than the screen but the tables' own scrolling.
    b.set_size(390, 844);
    b.goto(&format!("http://{}/#/stacks", env.daemon_file().0));
    b.wait_for("main", 20, |t| t.contains("prod"));
    let wide = b.js(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        json!([]),
    );
    assert!(
        wide.as_i64().unwrap() <= 0,
        "the page scrolls sideways by {wide} px"
    );
    b.screenshot(&dir, "stacks-phone");

    // Dark, as the system prefers, and back with the toggle.
    b.set_size(1280, 800);
    b.prefer_dark(true);
    b.js(
        "localStorage.removeItem('strata.dashboard.theme')",
        json!([]),
    );
    b.goto(&format!("http://{}/#/runs", env.daemon_file().0));
    b.refresh();
    b.wait_for("main", 20, |t| t.contains("flaky"));
    let bg = b.js(
        "return getComputedStyle(document.body).backgroundColor",
        json!([]),
    );
    assert_eq!(bg, "rgb(16, 21, 28)");
    b.screenshot(&dir, "runs-dark");
    b.click("#theme");
    let bg = b.js(
        "return getComputedStyle(document.body).backgroundColor",
        json!([]),
    );
    assert_eq!(bg, "rgb(247, 248, 250)");

    // `down --force` asks first, then deprovisions prod's own components.
    b.goto(&format!("http://{}/#/stacks", env.daemon_file().0));
    b.wait_for("main", 20, |t| t.contains("prod"));
    b.click("section[data-stack=prod] button.danger");
    b.accept_dialog();
    let prod = b.wait_for("section[data-stack=prod]", 60, |t| {
        t.contains("down --force prod: done") || t.contains("failed:")
    });
    assert!(prod.contains("deprovision"), "{prod}");
    for c in ["artifact-store/prod_store", "alerter/ops"] {
        let phase = b.js(
            "return document.querySelector(`section[data-stack=prod] tr[data-component='${arguments[0]}'] td.phase .badge`).dataset.status",
            json!([c]),
        );
        assert_eq!(phase, "registered", "{c}: {prod}");
    }

    // Set active: the CLI's active stack is prod now.
    b.click("section[data-stack=prod] button.activate");
    b.wait_for("section[data-stack=prod]", 20, |t| t.contains("★ active"));
    assert_eq!(env.json(&["stack", "describe"])["name"], "prod");

    // Logging out ends the session on the daemon too.
    let token = b.js(
        "return sessionStorage.getItem('strata.dashboard.token')",
        json!([]),
    );
    let token = token.as_str().expect("a session token").to_string();
    b.click("#logout");
    b.wait_for("main", 10, |t| t.contains("strata dashboard"));
    let (address, _) = env.daemon_file();
    let r = http(
        "GET",
        &format!("http://{address}/api/v1/stacks"),
        Some(&token),
        None,
    );
    assert_eq!(r.0, 401, "a closed session still works: {}", r.2);
}

/// One request: status, headers, body.
fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    host: Option<&str>,
) -> (u16, ureq::http::HeaderMap, String) {
    http_body(method, url, token, host, None)
}

fn http_body(
    method: &str,
    url: &str,
    token: Option<&str>,
    host: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, ureq::http::HeaderMap, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(h) = host {
        req = req.header("Host", h);
    }
    let resp = match body {
        Some(b) => agent.run(
            req.header("Content-Type", "application/json")
                .body(b.to_string())
                .unwrap(),
        ),
        None => agent.run(req.body(()).unwrap()),
    };
    let mut resp = resp.expect("the daemon answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, headers, text)
}

#[test]
fn the_dashboard_is_served_with_a_strict_policy_and_opened_once_per_link() {
    let env = Env::embedded().with_daemon();
    let (address, daemon_token) = env.daemon_file();
    let base = format!("http://{address}");

    // The page and its files need no token; every one carries the policy.
    let (status, headers, page) = http("GET", &format!("{base}/"), None, None);
    assert_eq!(status, 200);
    let csp = headers["content-security-policy"].to_str().unwrap();
    for want in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(want), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(page.contains("data-mode=\"daemon\""), "{page}");
    // Every script is a file of the page's own: none inline, nothing from elsewhere.
    for tag in page.split("<script").skip(1) {
        assert!(
            tag.trim_start()
                .starts_with("type=\"module\" src=\"/assets/"),
            "{tag}"
        );
    }
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    for (file, kind) in [
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let (status, headers, body) = http("GET", &format!("{base}/assets/{file}"), None, None);
        assert_eq!(status, 200, "{file}");
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        assert!(
            !body.contains("https://") || file != "app.js",
            "{file} loads from elsewhere"
        );
    }
    assert_eq!(
        http("GET", &format!("{base}/assets/nope.js"), None, None).0,
        404
    );

    // The Host check holds for the pages too (DNS rebinding).
    assert_eq!(
        http("GET", &format!("{base}/"), None, Some("evil.example:80")).0,
        403
    );

    // The API is not open: no token, no data.
    assert_eq!(
        http("GET", &format!("{base}/api/v1/stacks"), None, None).0,
        401
    );
    // Only who holds the daemon's token makes a link.
    assert_eq!(
        http(
            "POST",
            &format!("{base}/api/v1/dashboard/links"),
            None,
            None
        )
        .0,
        401
    );

    // A link opens one session, once.
    let url = env.ok(&["dashboard", "--no-open"]).trim().to_string();
    let code = url.split("#code=").nth(1).expect("a code").to_string();
    let trade = |code: &str| {
        http_body(
            "POST",
            &format!("{base}/api/v1/dashboard/session"),
            None,
            None,
            Some(json!({ "code": code })),
        )
    };
    let (status, _, body) = trade(&code);
    assert_eq!(status, 201, "{body}");
    let session: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = session["token"].as_str().unwrap().to_string();
    let (status, _, body) = trade(&code);
    assert_eq!(status, 401, "a link opened twice: {body}");
    assert!(body.contains("strata dashboard"), "{body}");
    assert_eq!(trade("00").0, 401);
    assert_eq!(trade(&daemon_token).0, 401);
    // The session reads the API; a JSON answer is not a page either.
    let (status, headers, _) = http("GET", &format!("{base}/api/v1/stacks"), Some(&token), None);
    assert_eq!(status, 200);
    assert!(headers.contains_key("content-security-policy"));
    assert!(
        headers["server-timing"]
            .to_str()
            .unwrap()
            .starts_with("app;dur=")
    );
    // A session reads, and presses the pages' buttons; nothing more.
    let (status, _, body) = http_body(
        "POST",
        &format!("{base}/api/v1/dashboard/links"),
        Some(&token),
        None,
        Some(json!({})),
    );
    assert_eq!(status, 403, "a session renews itself: {body}");
    assert!(body.contains("strata"), "{body}");
    env.ok(&["secret", "create", "db", "--password=s3cr3t-c4n4ry"]);
    for (method, path) in [
        ("GET", "/api/v1/secrets/db?reveal=true"),
        ("GET", "/api/v1/secrets/db?reveal=%74rue"),
        ("POST", "/api/v1/daemon/stop"),
        ("POST", "/api/v1/restore"),
        ("DELETE", "/api/v1/stacks/default"),
    ] {
        let (status, _, body) = http(method, &format!("{base}{path}"), Some(&token), None);
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(!body.contains("s3cr3t-c4n4ry"), "{body}");
    }
    let (status, _, body) = http_body(
        "POST",
        &format!("{base}/api/v1/pipelines/run"),
        Some(&token),
        None,
        Some(json!({"file": "/dev/null"})),
    );
    assert_eq!(status, 403, "a session runs a pipeline: {body}");
    let (status, _, body) = http(
        "GET",
        &format!("{base}/api/v1/secrets/db"),
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("s3cr3t-c4n4ry"), "{body}");
    assert!(env.ok(&["stack", "list"]).contains("default"));
    // Ended, it reads nothing; the daemon's own token cannot be ended this way.
    assert_eq!(
        http(
            "DELETE",
            &format!("{base}/api/v1/dashboard/session"),
            Some(&token),
            None
        )
        .0,
        204
    );
    assert_eq!(
        http("GET", &format!("{base}/api/v1/stacks"), Some(&token), None).0,
        401
    );
    assert_eq!(
        http(
            "DELETE",
            &format!("{base}/api/v1/dashboard/session"),
            Some(&daemon_token),
            None
        )
        .0,
        404
    );
    assert_eq!(
        http(
            "GET",
            &format!("{base}/api/v1/stacks"),
            Some(&daemon_token),
            None
        )
        .0,
        200
    );

    // `strata dashboard` on a home with no daemon starts one.
    let quiet = Env::embedded();
    let out = quiet.ok(&["dashboard", "--no-open", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert!(v["url"].as_str().unwrap().contains("/#code="), "{v}");
    assert!(quiet.home().join("daemon.json").exists());
    quiet.ok(&["daemon", "stop"]);
}

#[test]
fn the_browser_is_handed_the_link_in_a_private_file_never_on_a_command_line() {
    // Every user of the machine can read a process's command line (`ps`, /proc): a code
    // there could be traded for a session before the browser uses it. `strata dashboard`
    // hands the desktop's opener a file only its user can read, which sends the browser
    // on to the link.
    use std::os::unix::fs::PermissionsExt;
    let env = Env::embedded().with_daemon();
    let bin = tempfile::tempdir().unwrap();
    let argv = bin.path().join("argv");
    let opener = bin.path().join("xdg-open");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {}.tmp && mv {0}.tmp {0}\n",
            argv.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (code, shown) = env.terminal_with(
        &["dashboard"],
        &[],
        &[("PATH", &path), ("DISPLAY", ":99"), ("WAYLAND_DISPLAY", "")],
    );
    assert_eq!(code, 0, "{shown}");
    let printed = shown
        .split_whitespace()
        .find(|w| w.contains("/#code="))
        .unwrap_or_else(|| panic!("no link on the terminal: {shown}"))
        .to_string();
    let code_part = printed.split("#code=").nth(1).unwrap().to_string();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !argv.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "xdg-open never ran: {shown}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let args = std::fs::read_to_string(&argv).unwrap();
    assert!(
        !args.contains(&code_part),
        "the code on a command line: {args}"
    );
    let file = args
        .trim()
        .strip_prefix("file://")
        .unwrap_or_else(|| panic!("not a file URL: {args}"));
    let file = std::path::Path::new(file);
    assert!(
        file.starts_with(env.home().join("dashboard")),
        "{}",
        file.display()
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let page = std::fs::read_to_string(file).unwrap();
    assert!(
        page.contains(&format!("content=\"0;url={printed}\"")),
        "the page sends the browser on to the link: {page}"
    );

    // The link it leads to is the one printed, and opens a session once.
    let base = printed.split("/#code=").next().unwrap();
    let (status, _, body) = http_body(
        "POST",
        &format!("{base}/api/v1/dashboard/session"),
        None,
        None,
        Some(serde_json::json!({ "code": code_part })),
    );
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("\"token\":\"dash_"), "{body}");
}
