//! Every `zenml` command of the seeds (001 "Stacks, Components, Flavors" and 003
//! "Understand your stack"), run as `strata …` against the real binary.

use crate::support::{Env, wasm};

#[test]
fn a_new_home_has_an_active_default_stack_with_local_components() {
    let env = Env::new();
    let out = env.ok(&["init"]);
    assert!(out.contains(&env.home().display().to_string()), "{out}");
    let stacks = env.ok(&["stack", "list"]);
    assert!(
        stacks.contains("👉") && stacks.contains("default"),
        "{stacks}"
    );
    assert!(
        stacks.contains("ORCHESTRATOR") && stacks.contains("ARTIFACT_STORE"),
        "{stacks}"
    );
    assert_eq!(env.ok(&["stack", "get"]).trim(), "default");
    let d = env.json(&["stack", "describe"]);
    let types: Vec<&str> = d["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["component_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["artifact-store", "orchestrator"]);
}

#[test]
fn any_command_initialises_a_new_home() {
    let env = Env::new();
    let out = env.ok(&["orchestrator", "list"]);
    assert!(out.contains("default") && out.contains("local"), "{out}");
}

#[test]
fn flavor_list_shows_the_seed_columns() {
    let env = Env::new();
    let out = env.ok(&["artifact-store", "flavor", "list"]);
    for col in ["FLAVOR", "INTEGRATION", "READY-TO-USE", "SOURCE"] {
        assert!(out.contains(col), "missing column {col}:\n{out}");
    }
    assert!(
        out.contains("local")
            && out.contains("built-in")
            && out.contains("✅")
            && out.contains("sha256:"),
        "{out}"
    );
    let orch = env.ok(&["orchestrator", "flavor", "list"]);
    assert!(orch.contains("local"), "{orch}");
}

#[test]
fn flavor_describe_lists_each_field_with_kind_requirement_and_description() {
    let env = Env::new();
    let out = env.ok(&["artifact-store", "flavor", "describe", "local"]);
    for word in [
        "FIELD",
        "KIND",
        "REQUIRED",
        "DEFAULT",
        "DESCRIPTION",
        "path",
        "yes",
        "local paths",
    ] {
        assert!(out.contains(word), "missing {word}:\n{out}");
    }
    let err = env.fail(&["orchestrator", "flavor", "describe", "kubeflow"]);
    assert!(
        err.contains("orchestrator flavor `kubeflow` does not exist"),
        "{err}"
    );
    assert!(err.contains("registered: local"), "{err}");
}

#[test]
fn a_custom_flavor_registers_and_then_lists() {
    let env = Env::new();
    let path = wasm("fixture_alerter");
    let out = env.run(&["alerter", "flavor", "register", &path]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("Registered alerter flavor `alerter`"),
        "{}",
        out.stderr
    );
    let list = env.ok(&["alerter", "flavor", "list"]);
    assert!(
        list.contains("alerter")
            && list.contains("custom")
            && list.contains("fixture_alerter.wasm"),
        "{list}"
    );
    let all = env.ok(&["flavor", "list"]);
    assert!(
        all.contains("alerter") && all.contains("artifact-store"),
        "{all}"
    );
}

#[test]
fn the_seed_walkthrough_registers_a_store_and_a_stack_and_brings_it_up_and_down() {
    let env = Env::new();
    // zenml artifact-store list: a fresh home shows the default local store.
    assert!(env.ok(&["artifact-store", "list"]).contains("default"));
    // zenml artifact-store register NAME --flavor=local --path=/path/to/your/store
    let store = env.path("store");
    env.ok(&[
        "artifact-store",
        "register",
        "my_store",
        "--flavor=local",
        &format!("--path={store}"),
    ]);
    assert!(env.ok(&["artifact-store", "list"]).contains("my_store"));
    // zenml stack register STACK_NAME -o <orchestrator> -a <artifact-store>
    env.ok(&[
        "stack", "register", "my_stack", "-o", "default", "-a", "my_store",
    ]);
    let list = env.ok(&["stack", "list"]);
    assert!(
        list.contains("my_stack") && list.contains("my_store"),
        "{list}"
    );
    // zenml stack set <name>
    env.ok(&["stack", "set", "my_stack"]);
    assert_eq!(env.ok(&["stack", "get"]).trim(), "my_stack");
    // zenml stack up
    let up = env.run(&["stack", "up"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert!(
        up.stderr
            .contains("artifact-store `my_store`: provision done"),
        "{}",
        up.stderr
    );
    assert!(
        up.stderr.contains("orchestrator `default`: resume done"),
        "{}",
        up.stderr
    );
    assert!(
        std::path::Path::new(&store)
            .join(".strata-artifact-store")
            .exists(),
        "provision created no marker"
    );
    let d = env.json(&["artifact-store", "describe", "my_store"]);
    assert_eq!(d["phase"], "running");
    assert_eq!(d["status"]["Ok"]["running"], true, "{d}");
    assert_eq!(d["grants"][0]["path"], store);
    assert_eq!(d["grants"][0]["access"], "read-write");
    // zenml stack up again: nothing to do.
    let again = env.run(&["stack", "up"]);
    assert!(again.stderr.contains("already running"), "{}", again.stderr);
    // zenml artifact-store down NAME / up NAME
    env.ok(&["artifact-store", "down", "my_store"]);
    assert_eq!(
        env.json(&["artifact-store", "describe", "my_store"])["phase"],
        "provisioned"
    );
    env.ok(&["artifact-store", "up", "my_store"]);
    assert_eq!(
        env.json(&["artifact-store", "describe", "my_store"])["phase"],
        "running"
    );
    // zenml stack down, then down --force before unregistering
    env.ok(&["stack", "down"]);
    assert_eq!(
        env.json(&["artifact-store", "describe", "my_store"])["phase"],
        "provisioned"
    );
    env.ok(&["stack", "down", "--force"]);
    assert_eq!(
        env.json(&["artifact-store", "describe", "my_store"])["phase"],
        "registered"
    );
    assert!(
        !std::path::Path::new(&store)
            .join(".strata-artifact-store")
            .exists(),
        "deprovision left its marker"
    );
    assert!(
        std::path::Path::new(&store).exists(),
        "deprovision removed the directory it did not create"
    );
    // zenml stack delete / zenml <component> delete
    env.ok(&["stack", "set", "default"]);
    env.ok(&["stack", "delete", "my_stack"]);
    env.ok(&["artifact-store", "delete", "my_store"]);
    assert!(!env.ok(&["artifact-store", "list"]).contains("my_store"));
}

#[test]
fn long_flags_register_a_stack_as_in_the_seed() {
    let env = Env::new();
    env.ok(&[
        "artifact-store",
        "register",
        "s2",
        "--flavor",
        "local",
        "--path",
        &env.path("s2"),
    ]);
    env.ok(&[
        "stack",
        "register",
        "prod",
        "--orchestrator",
        "default",
        "--artifact-store",
        "s2",
        "--set",
    ]);
    assert_eq!(env.ok(&["stack", "get"]).trim(), "prod");
    let d = env.json(&["stack", "describe", "prod"]);
    assert_eq!(d["active"], true);
}

#[test]
fn interactive_register_refuses_cleanly_without_a_terminal() {
    let env = Env::new();
    let err = env.refused(&["artifact-store", "register", "x", "--flavor=local", "-i"]);
    assert!(err.contains("standard input is not one"), "{err}");
}

#[test]
fn help_texts_name_every_component_type_and_stack_flag() {
    let env = Env::new();
    let top = env.ok(&["--help"]);
    for t in [
        "orchestrator",
        "artifact-store",
        "metadata-store",
        "container-registry",
        "secrets-manager",
        "step-operator",
        "model-deployer",
        "feature-store",
        "experiment-tracker",
        "alerter",
        "data-validator",
        "image-builder",
        "annotator",
        "model-registry",
        "deployer",
    ] {
        assert!(top.contains(t), "`strata --help` does not list {t}");
        let sub = env.ok(&[t, "--help"]);
        for c in [
            "flavor", "register", "list", "describe", "delete", "up", "down",
        ] {
            assert!(sub.contains(c), "`strata {t} --help` lacks {c}");
        }
    }
    let reg = env.ok(&["stack", "register", "--help"]);
    for flag in [
        "-o, --orchestrator",
        "-a, --artifact-store",
        "-s, --step-operator",
        "-c, --container-registry",
    ] {
        assert!(
            reg.contains(flag),
            "`stack register --help` lacks {flag}:\n{reg}"
        );
    }
}

#[test]
fn the_library_sees_what_the_cli_registered() {
    // The library opens the home in-process, which a running daemon would hold.
    let env = Env::embedded();
    env.ok(&[
        "artifact-store",
        "register",
        "lib_store",
        "--flavor=local",
        &format!("--path={}", env.path("lib")),
    ]);
    env.ok(&[
        "stack",
        "register",
        "lib_stack",
        "-o",
        "default",
        "-a",
        "lib_store",
        "--set",
    ]);
    let client = strata::Client::open(strata::home::Home::at(env.home())).unwrap();
    let stack = client.active_stack().unwrap();
    assert_eq!(stack.name, "lib_stack");
    assert_eq!(stack.orchestrator().unwrap().name, "default");
    assert_eq!(stack.artifact_store().unwrap().name, "lib_store");
    assert_eq!(
        stack.artifact_store().unwrap().config("path").unwrap(),
        env.path("lib")
    );
}

#[test]
fn integration_install_registers_a_bundle_of_flavors() {
    // Seed 000: `zenml integration install <name-of-the-integration>`.
    let env = Env::new();
    let dir = env.home().join("integrations/ops");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["fixture_alerter", "fixture_needy"] {
        std::fs::copy(wasm(f), dir.join(format!("{f}.wasm"))).unwrap();
    }
    let list = env.json(&["integration", "list"]);
    assert_eq!(list[0]["name"], "ops");
    assert_eq!(list[0]["installed"], false);
    let err = env.refused(&["integration", "install", "kubeflow"]);
    assert!(
        err.contains("integration `kubeflow` does not exist") && err.contains("available: ops"),
        "{err}"
    );
    let r = env.run(&["integration", "install", "ops"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("Installed step operator flavor `needy`"),
        "{}",
        r.stderr
    );
    let f = env.json(&["alerter", "flavor", "describe", "alerter"]);
    assert_eq!(f["source"]["integration"], "ops", "{f}");
    assert_eq!(env.json(&["integration", "list"])[0]["installed"], true);
    let again = env.run(&["integration", "install", "ops"]);
    assert!(
        again
            .stderr
            .contains("Already installed alerter flavor `alerter`"),
        "{}",
        again.stderr
    );
    // A directory with a file that is not a flavor is refused as a whole.
    let bad = env.work.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(wasm("fixture_trap"), bad.join("a.wasm")).unwrap();
    std::fs::write(bad.join("b.wasm"), b"not wasm").unwrap();
    let err = env.refused(&["integration", "install", bad.to_str().unwrap()]);
    assert!(err.contains("b.wasm"), "{err}");
    // Two files of the same flavor: refused before the first one is registered.
    std::fs::copy(wasm("fixture_trap"), bad.join("b.wasm")).unwrap();
    let err = env.refused(&["integration", "install", bad.to_str().unwrap()]);
    assert!(
        err.contains("holds two alerter flavors named `trap`"),
        "{err}"
    );
    // Uninstall is refused while a flavor is in use, then removes them all.
    env.ok(&["step-operator", "register", "runner", "--flavor=needy"]);
    let err = env.refused(&["integration", "uninstall", "ops"]);
    assert!(err.contains("is used by step operator `runner`"), "{err}");
    env.ok(&["step-operator", "delete", "runner"]);
    env.ok(&["integration", "uninstall", "ops"]);
    assert_eq!(env.json(&["integration", "list"])[0]["installed"], false);
}

#[test]
fn flavor_test_runs_a_full_round_in_a_throwaway_home() {
    let env = Env::new();
    let before = env.snapshot();
    let r = env.json(&["flavor", "test", &wasm("fixture_alerter"), "--channel=ops"]);
    assert_eq!(r["passed"], true, "{r}");
    assert_eq!(r["config"]["channel"], "ops", "{r}");
    let steps: Vec<String> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().trim().to_string())
        .collect();
    for expected in [
        "register (compile, checks, describe)",
        "register a component (validate)",
        "provision",
        "resume",
        "status agrees",
        "up again (must change nothing)",
        "suspend",
        "deprovision",
    ] {
        assert!(
            steps.iter().any(|s| s == expected),
            "no `{expected}` in {steps:?}"
        );
    }
    // The user's own home is untouched, and the scratch home is gone.
    assert_eq!(before, env.snapshot());
    let scratch = r["config"]["path"].as_str().unwrap();
    assert!(
        !std::path::Path::new(scratch).exists(),
        "{scratch} was left behind"
    );
    // A flavor that traps fails at the step that trapped.
    let err = env.fail(&["flavor", "test", &wasm("fixture_trap")]);
    assert!(err.contains("failed at `up (provision, resume)`"), "{err}");
    let err = env.fail(&["flavor", "test", &wasm("fixture_alerter"), "--colour=red"]);
    assert!(err.contains("failed at `example configuration`"), "{err}");
}

#[test]
fn flavor_new_makes_a_project_that_builds_and_passes_flavor_test() {
    let env = Env::new();
    let dir = env.work.path().join("my-operator");
    let r = env.run(&[
        "flavor",
        "new",
        "my-operator",
        "--type",
        "step-operator",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("run `make` there"), "{}", r.stderr);
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "Makefile",
        "README.md",
        "src/lib.rs",
        "wit/lifecycle.wit",
        "vendor/strata-flavor-sdk/Cargo.toml",
        "vendor/strata-flavor-sdk/src/flavor.rs",
    ] {
        assert!(dir.join(f).exists(), "no {f}");
    }
    // The project uses the SDK it carries, not wit-bindgen of its own.
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(lib.contains("impl Flavor for MyOperatorFlavor"), "{lib}");
    assert!(!lib.contains("wit_bindgen"), "{lib}");
    // Its own `make test` (build `--locked` to the Cargo.lock it came with, unit tests,
    // then `strata flavor test`), with this strata. Builds share one target directory
    // between runs of this test; `flavor new` and `make` never use a home, so the
    // daemon pass of the suite skips them.
    if std::env::var_os("STRATA_TEST_DAEMON").is_none_or(|v| v != "1") {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = repo.join("target/flavor-new-test");
        let make = std::process::Command::new("make")
            .arg("test")
            .arg(format!("STRATA={}", env!("CARGO_BIN_EXE_strata")))
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(&dir)
            .output()
            .expect("make runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&make.stdout),
            String::from_utf8_lossy(&make.stderr),
        );
        assert!(
            make.status.success(),
            "`make test` failed:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("test result: ok. 1 passed"), "{stdout}");
        assert!(stderr.contains("Flavor `my-operator` passed."), "{stderr}");
        let wasm = target.join("wasm32-wasip2/release/my_operator.wasm");
        let t = env.json(&["flavor", "test", wasm.to_str().unwrap()]);
        assert_eq!(t["passed"], true, "{t}");
        assert_eq!(t["component_type"], "step-operator", "{t}");
    }
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
    let err = env.fail(&["flavor", "new", "x", "--type", "artifact-store"]);
    assert!(
        err.contains("no template for artifact store flavors yet"),
        "{err}"
    );
    let err = env.fail(&["flavor", "new", "x", "--type", "kettle"]);
    assert!(err.contains("`kettle` is not a component type"), "{err}");
}
