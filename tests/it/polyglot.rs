//! The example flavors of `flavors/examples/`: in Python (componentize-py) and
//! JavaScript (componentize-js), built by `make examples`, and in Rust on the flavor SDK,
//! built by `make flavors`; all run through the same sandbox and lifecycle.

use crate::support::{Env, example, wasm};
use crate::walkthrough;

#[test]
fn a_python_flavor_validates_keeps_state_and_writes_in_its_grant() {
    let wasm = example("py_alerter");
    // The whole round in a throwaway home first, as an author would run it.
    let env = Env::new();
    let out = env.run(&["flavor", "test", &wasm, "--channel=ops"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("Flavor `py-alerter` passed."),
        "{}",
        out.stderr
    );

    env.ok(&["alerter", "flavor", "register", &wasm]);
    let f = env.json(&["alerter", "flavor", "describe", "py-alerter"]);
    assert_eq!(f["info"]["version"], "0.1.0", "{f}");
    // Its own validate, with both problems at once, and nothing stored.
    let err = env.refused(&[
        "alerter",
        "register",
        "a",
        "--flavor=py-alerter",
        "--channel=Ops!",
        "--min_level=loud",
        "--path=alerts",
    ]);
    assert!(err.contains("`Ops!` is not a channel name"), "{err}");
    assert!(err.contains("`loud` is not a level"), "{err}");

    env.ok(&[
        "alerter",
        "register",
        "a",
        "--flavor=py-alerter",
        "--channel=ops",
        "--path=alerts",
    ]);
    env.ok(&[
        "stack", "register", "st", "-o", "default", "-a", "default", "-al", "a", "--set",
    ]);
    env.ok(&["stack", "up"]);
    let pipeline = env.path("p.yaml");
    std::fs::write(
        &pipeline,
        "name: training\nsteps:\n  - name: load\n  - name: train\n    upstream: [load]\n",
    )
    .unwrap();
    env.ok(&["pipeline", "run", &pipeline, "--param", "lr=0.1"]);
    // It wrote inside its grant, and only there.
    let log =
        std::fs::read_to_string(env.work.path().join("alerts/alerts.log")).expect("alerts.log");
    assert!(log.contains("alerts for #ops"), "{log}");
    assert!(
        log.contains("[info] #ops: a pipeline run starts (lr=0.1)"),
        "{log}"
    );
    // Its state came back on the next call: `status` reads the phase it stored.
    let a = env.json(&["alerter", "describe", "a"]);
    assert_eq!(a["phase"], "running", "{a}");
    let detail = a["status"]["Ok"]["detail"].as_str().unwrap_or_default();
    assert_eq!(detail, "alerts.log holds 1 alerts; running", "{a}");
    env.ok(&["stack", "down", "--force"]);
    assert!(!env.work.path().join("alerts/alerts.log").exists());
}

#[test]
fn a_rust_flavor_on_the_sdk_validates_keeps_state_and_writes_in_its_grant() {
    let wasm = wasm("rust_alerter");
    let env = Env::new();
    let out = env.run(&["flavor", "test", &wasm, "--channel=ops"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("Flavor `rust-alerter` passed."),
        "{}",
        out.stderr
    );

    env.ok(&["alerter", "flavor", "register", &wasm]);
    let f = env.json(&["alerter", "flavor", "describe", "rust-alerter"]);
    assert_eq!(f["info"]["version"], "0.1.0", "{f}");
    let fields: Vec<&str> = f["info"]["config"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|field| field["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(fields, ["channel", "min_level", "path"], "{f}");
    // Its settings, through the SDK's validate: both problems at once, nothing stored.
    let err = env.refused(&[
        "alerter",
        "register",
        "a",
        "--flavor=rust-alerter",
        "--channel=Ops!",
        "--min_level=loud",
        "--path=alerts",
    ]);
    assert!(err.contains("`Ops!` is not a channel name"), "{err}");
    assert!(
        err.contains("`min_level` must be one of info, warning, error, not `loud`"),
        "{err}"
    );

    env.ok(&[
        "alerter",
        "register",
        "a",
        "--flavor=rust-alerter",
        "--channel=ops",
        "--path=alerts",
    ]);
    env.ok(&[
        "stack", "register", "st", "-o", "default", "-a", "default", "-al", "a", "--set",
    ]);
    let up = env.run(&["stack", "up", "--verbose"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let log = env.work.path().join("alerts/alerts.log");
    // The SDK's `info!` reached strata's log through the host.
    assert!(
        up.stderr.contains(&format!(
            "alerter `a` provision: info: created {}",
            log.display()
        )),
        "{}",
        up.stderr
    );
    let pipeline = env.path("p.yaml");
    std::fs::write(&pipeline, "name: nightly\nsteps:\n  - name: only\n").unwrap();
    env.ok(&["pipeline", "run", &pipeline, "--param", "lr=0.1"]);
    // It wrote inside its grant, and only there.
    let text = std::fs::read_to_string(&log).expect("alerts.log");
    assert_eq!(
        text,
        "alerts for #ops\n[info] #ops: a pipeline run starts (lr=0.1)\n"
    );
    let files: Vec<_> = std::fs::read_dir(env.work.path().join("alerts"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["alerts.log"]);
    // Its state came back on every call: a `down` and an `up` count a second resume,
    // and `status` reads both the file and the state.
    env.ok(&["alerter", "down", "a"]);
    let a = env.json(&["alerter", "describe", "a"]);
    assert_eq!(
        a["status"]["Ok"]["detail"], "alerts.log holds 1 alerts; suspended, resumed 1 times",
        "{a}"
    );
    env.ok(&["alerter", "up", "a"]);
    let a = env.json(&["alerter", "describe", "a"]);
    assert_eq!(a["phase"], "running", "{a}");
    assert_eq!(
        a["status"]["Ok"]["detail"], "alerts.log holds 1 alerts; running, resumed 2 times",
        "{a}"
    );
    // Provisioning is idempotent: the log, removed behind strata's back, comes back on
    // the next `up` without duplicating anything.
    std::fs::remove_file(&log).unwrap();
    env.ok(&["stack", "up"]);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "alerts for #ops\n");
    env.ok(&["stack", "down", "--force"]);
    assert!(!log.exists());
    let a = env.json(&["alerter", "describe", "a"]);
    assert_eq!(a["status"]["Ok"]["detail"], "alerts.log is missing", "{a}");
}

#[test]
fn a_javascript_flavor_validates_keeps_state_and_logs() {
    let wasm = example("js_alerter");
    let env = Env::new();
    let out = env.run(&[
        "flavor",
        "test",
        &wasm,
        "--channel=ops",
        "--webhook=https://hooks.example/a",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("Flavor `js-alerter` passed."),
        "{}",
        out.stderr
    );

    env.ok(&["alerter", "flavor", "register", &wasm]);
    let err = env.refused(&[
        "alerter",
        "register",
        "a",
        "--flavor=js-alerter",
        "--channel=ops",
        "--webhook=http://hooks.example/a",
    ]);
    assert!(err.contains("is not an https:// URL"), "{err}");
    env.ok(&[
        "alerter",
        "register",
        "a",
        "--flavor=js-alerter",
        "--channel=ops",
        "--webhook=https://hooks.example/a",
    ]);
    env.ok(&["alerter", "up", "a"]);
    env.ok(&["alerter", "down", "a"]);
    env.ok(&["alerter", "up", "a"]);
    // The state it handed back counts each resume.
    let a = env.json(&["alerter", "describe", "a"]);
    assert_eq!(
        a["status"]["Ok"]["detail"], "running; resumed 2 times",
        "{a}"
    );
    env.ok(&[
        "stack", "register", "st", "-o", "default", "-a", "default", "-al", "a", "--set",
    ]);
    env.ok(&["stack", "up"]);
    let pipeline = env.path("p.yaml");
    std::fs::write(&pipeline, "name: nightly\nsteps:\n  - name: only\n").unwrap();
    let run = env.run(&[
        "pipeline",
        "run",
        &pipeline,
        "--param",
        "day=mon",
        "--verbose",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("alert to #ops via https://hooks.example/a: a pipeline run starts (day=mon)"),
        "{}",
        run.stderr
    );
}

/// `strata flavor new --lang LANG --type T`, then the project's own `make test`; returns
/// the `.wasm` it built. With `own_toolchain`, the project's `make` installs its toolchain
/// itself (componentize-py into its `.venv`, componentize-js from its lockfile), as on a
/// new machine; otherwise it is given the one `make examples` installed, so the test does
/// not install it again. `None` in the daemon pass: `flavor new` and `flavor test` never
/// use a home or a daemon, so one pass is enough.
fn new_project_builds_and_passes(
    env: &Env,
    lang: &str,
    t: &str,
    own_toolchain: bool,
) -> Option<String> {
    if !walkthrough::in_process_pass() {
        return None;
    }
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The make variable naming the toolchain, its value, and a file it must hold.
    let (var, tool) = match lang {
        "python" => ("VENV", repo.join("target/tools/py")),
        _ => (
            "COMPONENTIZE_JS",
            repo.join("flavors/examples/js-alerter/node_modules/.bin/componentize-js"),
        ),
    };
    let installed = if lang == "python" {
        tool.join("bin/componentize-py")
    } else {
        tool.clone()
    };
    assert!(installed.exists(), "run `make examples` first");
    let dir = env.work.path().join("proj");
    walkthrough::flavor_new(env, "my-flavor", t, lang, &dir);
    let given = [(var, tool.to_str().unwrap())];
    let (_, stderr) = walkthrough::make_test(&dir, if own_toolchain { &[] } else { &given });
    if own_toolchain {
        let installed = if lang == "python" {
            dir.join(".venv/bin/componentize-py")
        } else {
            dir.join("node_modules/.bin/componentize-js")
        };
        assert!(
            installed.exists(),
            "`make` did not install {}",
            installed.display()
        );
    }
    assert!(stderr.contains("Flavor `my-flavor` passed."), "{stderr}");
    let wasm = dir.join("my_flavor.wasm");
    assert!(wasm.exists());
    Some(wasm.display().to_string())
}

#[test]
fn flavor_new_python_builds_and_passes_flavor_test() {
    new_project_builds_and_passes(&Env::new(), "python", "experiment-tracker", true);
}

#[test]
fn flavor_new_python_makes_an_artifact_store_that_keeps_artifacts_in_its_grant() {
    let env = Env::new();
    if let Some(wasm) = new_project_builds_and_passes(&env, "python", "artifact-store", false) {
        walkthrough::artifact_store_keeps_artifacts_in_its_grant(&env, &wasm, "my-flavor");
    }
}

#[test]
fn flavor_new_python_makes_an_orchestrator_that_schedules_steps_in_dependency_order() {
    let env = Env::new();
    if let Some(wasm) = new_project_builds_and_passes(&env, "python", "orchestrator", false) {
        walkthrough::orchestrator_schedules_steps_in_dependency_order(&env, &wasm, "my-flavor");
    }
}

#[test]
fn flavor_new_js_builds_and_passes_flavor_test() {
    new_project_builds_and_passes(&Env::new(), "js", "model-registry", true);
}

#[test]
fn flavor_new_js_makes_an_orchestrator_that_schedules_steps_in_dependency_order() {
    let env = Env::new();
    if let Some(wasm) = new_project_builds_and_passes(&env, "js", "orchestrator", false) {
        walkthrough::orchestrator_schedules_steps_in_dependency_order(&env, &wasm, "my-flavor");
    }
}
