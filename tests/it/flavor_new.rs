//! `strata flavor new`: projects made from each template, built by their own `make
//! test` and checked by `strata flavor test`. Neither command uses a home or a daemon,
//! so `make test` runs this module once, in its in-process pass (the daemon pass skips
//! `flavor_new::`), rather than letting it pass there without checking anything.

use crate::support::Env;
use crate::walkthrough::{
    artifact_store_keeps_artifacts_in_its_grant, flavor_new, make_test,
    orchestrator_schedules_steps_in_dependency_order, rust_project, rust_target,
};

#[test]
fn flavor_new_makes_a_project_that_builds_and_passes_flavor_test() {
    let env = Env::new();
    let dir = env.work.path().join("my-operator");
    let wasm = rust_project(&env, "my-operator", "step-operator", &dir, 1);
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "Makefile",
        "README.md",
        "src/lib.rs",
    ] {
        assert!(dir.join(f).exists(), "no {f}");
    }
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(lib.contains("impl Flavor for MyOperatorFlavor"), "{lib}");
    assert!(!lib.contains("wit_bindgen"), "{lib}");
    let t = env.json(&["flavor", "test", &wasm]);
    assert_eq!(t["passed"], true, "{t}");
    assert_eq!(t["component_type"], "step-operator", "{t}");
    // What it refuses, each with a way forward.
    let err = env.fail(&[
        "flavor",
        "new",
        "x",
        "--type",
        "step-operator",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(err.contains("not empty"), "{err}");
    let err = env.fail(&["flavor", "new", "Bad Name", "--type", "alerter"]);
    assert!(err.contains("is not a valid flavor name"), "{err}");
    let err = env.fail(&["flavor", "new", "x", "--type", "alerter", "--lang", "cobol"]);
    assert!(err.contains("there is no `cobol` template"), "{err}");
    let err = env.fail(&["flavor", "new", "x", "--type", "kettle"]);
    assert!(
        err.contains("component type `kettle` does not exist"),
        "{err}"
    );
    // componentize-js has no file system, so there is no JavaScript artifact store.
    let err = env.fail(&[
        "flavor",
        "new",
        "x",
        "--type",
        "artifact-store",
        "--lang",
        "js",
    ]);
    assert!(
        err.contains("no JavaScript template for artifact store flavors")
            && err.contains("componentize-js has no file system API"),
        "{err}"
    );
    assert!(
        err.contains("use `--lang rust` or `--lang python`"),
        "{err}"
    );
    assert!(!env.work.path().join("x").exists());
}

#[test]
fn flavor_new_makes_an_artifact_store_that_keeps_artifacts_in_its_grant() {
    let env = Env::new();
    let dir = env.work.path().join("my-store");
    let wasm = rust_project(&env, "my-store", "artifact-store", &dir, 3);
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(lib.contains("impl_lifecycle!(MyStoreFlavor"), "{lib}");
    artifact_store_keeps_artifacts_in_its_grant(&env, &wasm, "my-store");

    // `flavor test` tries every store call: a `list` that drops an entry is caught.
    let sorted = "entries.sort_by(|a, b| a.name.cmp(&b.name));";
    assert!(lib.contains(sorted), "{lib}");
    let broken = lib.replace(sorted, &format!("{sorted}\n        entries.pop();"));
    std::fs::write(dir.join("src/lib.rs"), broken).unwrap();
    let target = rust_target();
    let built = std::process::Command::new("make")
        .arg(format!("CARGO_TARGET_DIR={}", target.display()))
        .current_dir(&dir)
        .output()
        .expect("make runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let r = env.run(&["flavor", "test", &wasm, "--output", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("failed at `artifact store calls"),
        "{}",
        r.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&r.stdout).expect("a JSON report");
    let step = report["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(step["ok"], false, "{report}");
    assert!(
        step["detail"]
            .as_str()
            .unwrap()
            .contains("`list` of `strata-flavor-test` after a copy and a rename"),
        "{step}"
    );
}

#[test]
fn flavor_new_makes_an_orchestrator_that_schedules_steps_in_dependency_order() {
    let env = Env::new();
    let dir = env.work.path().join("my-orchestrator");
    let wasm = rust_project(&env, "my-orchestrator", "orchestrator", &dir, 3);
    orchestrator_schedules_steps_in_dependency_order(&env, &wasm, "my-orchestrator");
}

/// `strata flavor new --lang LANG --type T`, then the project's own `make test`; returns
/// the `.wasm` it built. With `own_toolchain`, the project's `make` installs its toolchain
/// itself (componentize-py into its `.venv`, componentize-js from its lockfile), as on a
/// new machine; otherwise it is given the one `make examples` installed, so the test does
/// not install it again.
fn new_project_builds_and_passes(env: &Env, lang: &str, t: &str, own_toolchain: bool) -> String {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
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
    flavor_new(env, "my-flavor", t, lang, &dir);
    let given = [(var, tool.to_str().unwrap())];
    let (_, stderr) = make_test(&dir, if own_toolchain { &[] } else { &given });
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
    wasm.display().to_string()
}

#[test]
fn flavor_new_python_builds_and_passes_flavor_test() {
    new_project_builds_and_passes(&Env::new(), "python", "experiment-tracker", true);
}

#[test]
fn flavor_new_python_makes_an_artifact_store_that_keeps_artifacts_in_its_grant() {
    let env = Env::new();
    let wasm = new_project_builds_and_passes(&env, "python", "artifact-store", false);
    artifact_store_keeps_artifacts_in_its_grant(&env, &wasm, "my-flavor");
}

#[test]
fn flavor_new_python_makes_an_orchestrator_that_schedules_steps_in_dependency_order() {
    let env = Env::new();
    let wasm = new_project_builds_and_passes(&env, "python", "orchestrator", false);
    orchestrator_schedules_steps_in_dependency_order(&env, &wasm, "my-flavor");
}

#[test]
fn flavor_new_js_builds_and_passes_flavor_test() {
    new_project_builds_and_passes(&Env::new(), "js", "model-registry", true);
}

#[test]
fn flavor_new_js_makes_an_orchestrator_that_schedules_steps_in_dependency_order() {
    let env = Env::new();
    let wasm = new_project_builds_and_passes(&env, "js", "orchestrator", false);
    orchestrator_schedules_steps_in_dependency_order(&env, &wasm, "my-flavor");
}

/// The webhook alerter `flavor new --type alerter` makes (a network flavor): its own
/// `make test` passes `flavor test`, whose loopback sink got its posts; then, against a
/// server of this test's, `up` and `down` each post once to the configured webhook, and
/// nothing else leaves; and `strata alerter post` sends the title line and the message
/// with the channel, says where it went, and names a refusal by the webhook's origin and
/// status, never its path.
fn webhook_alerter_posts(env: &Env, wasm: &str) {
    let r = env.json(&["flavor", "test", wasm]);
    let steps = r["steps"].as_array().unwrap();
    let sink = steps
        .iter()
        .find(|s| s["step"] == "network: requests the loopback sink received")
        .unwrap_or_else(|| panic!("no sink step: {r}"));
    assert!(
        sink["detail"].as_str().unwrap().contains("POST /webhook"),
        "{r}"
    );
    let refused = steps
        .iter()
        .find(|s| s["step"] == "network: no request leaves without a grant")
        .unwrap_or_else(|| panic!("no refusal step: {r}"));
    assert!(
        refused["detail"].as_str().unwrap().contains("refused"),
        "{r}"
    );

    let server = crate::net::Sink::start(None);
    env.ok(&["alerter", "flavor", "register", wasm]);
    env.ok(&[
        "alerter",
        "register",
        "ops",
        "--flavor=my-flavor",
        &format!("--webhook={}", server.url("/hooks/ops")),
    ]);
    env.ok(&["alerter", "up", "ops"]);
    env.ok(&["alerter", "down", "ops"]);
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/hooks/ops", "/hooks/ops"]);

    let hook = crate::servers::Hook::start();
    env.ok(&[
        "alerter",
        "register",
        "team",
        "--flavor=my-flavor",
        "--channel=#ops",
        &format!("--webhook={}", hook.url("/services/T0/B1/secret-part")),
    ]);
    let r = env.json(&[
        "alerter",
        "post",
        "team",
        "training failed",
        "--param",
        "title=Nightly",
    ]);
    let origin = format!("http://127.0.0.1:{}", hook.port);
    assert_eq!(r["detail"], format!("posted to {origin} (200)"), "{r}");
    let posts = hook.received();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].0.starts_with("post /services/t0/b1/secret-part"),
        "{posts:?}"
    );
    let sent: serde_json::Value = serde_json::from_slice(&posts[0].1).expect("a JSON body");
    assert_eq!(sent["text"], "Nightly\ntraining failed", "{sent}");
    assert_eq!(sent["channel"], "#ops", "{sent}");
    hook.answer(404);
    let err = env.fail(&["alerter", "post", "team", "again"]);
    assert!(err.contains(&format!("{origin} answered 404")), "{err}");
    assert!(!err.contains("secret-part"), "{err}");
}

#[test]
fn flavor_new_rust_makes_a_webhook_alerter_that_posts_only_to_its_webhook() {
    let env = Env::new();
    let dir = env.work.path().join("my-flavor");
    let wasm = rust_project(&env, "my-flavor", "alerter", &dir, 5);
    webhook_alerter_posts(&env, &wasm);
}

#[test]
fn flavor_new_python_makes_a_webhook_alerter_that_posts_only_to_its_webhook() {
    let env = Env::new();
    let wasm = new_project_builds_and_passes(&env, "python", "alerter", false);
    webhook_alerter_posts(&env, &wasm);
}

#[test]
fn flavor_new_js_makes_a_webhook_alerter_that_posts_only_to_its_webhook() {
    let env = Env::new();
    let wasm = new_project_builds_and_passes(&env, "js", "alerter", false);
    webhook_alerter_posts(&env, &wasm);
}
