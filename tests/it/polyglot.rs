//! The example flavors of `flavors/examples/`: in Python (componentize-py) and
//! JavaScript (componentize-js), built by `make examples`, and in Rust on the flavor SDK,
//! built by `make flavors`; all run through the same sandbox and lifecycle.

use crate::support::{Env, example, wasm};

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
