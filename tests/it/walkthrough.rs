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
    // The README's example, on a home opened in-process and on one a daemon serves: the
    // library reaches it the way the CLI does.
    for served in [false, true] {
        let env = if served {
            Env::embedded().with_daemon()
        } else {
            Env::embedded()
        };
        library_sees_what_the_cli_registered(&env, served);
    }
}

fn library_sees_what_the_cli_registered(env: &Env, served: bool) {
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
    let requests = || env.json(&["daemon", "status"])["info"]["requests"].as_u64();
    let before = requests();
    let client = strata::Client::open(strata::home::Home::at(env.home())).unwrap();
    let stack = client.active_stack().unwrap();
    assert_eq!(stack.name, "lib_stack");
    assert_eq!(stack.orchestrator().unwrap().name, "default");
    assert_eq!(stack.artifact_store().unwrap().name, "lib_store");
    assert_eq!(
        stack.artifact_store().unwrap().config("path").unwrap(),
        env.path("lib")
    );
    // Through the daemon's REST API when one serves the home (which it holds: opening
    // it in-process would be refused), else in this process.
    match served {
        true => assert!(requests() > before.map(|n| n + 3), "{before:?}"),
        false => assert_eq!(before, None),
    }
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
        "a pipeline run (prepare-pipeline-deployment)",
        "up again (must change nothing)",
        "suspend",
        "deprovision",
    ] {
        assert!(
            steps.iter().any(|s| s == expected),
            "no `{expected}` in {steps:?}"
        );
    }
    // The run went through the alerter's `prepare-pipeline-deployment`, on a stack of it
    // and the built-in defaults, orchestrated by the built-in `launch`.
    let run = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "a pipeline run (prepare-pipeline-deployment)")
        .unwrap();
    let detail = run["detail"].as_str().unwrap();
    assert!(
        detail.contains("alerter/flavor-test") && detail.contains(r#"[["load"], ["train"]]"#),
        "{run}"
    );
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

/// `strata flavor new NAME --type T [--lang L]` into `dir`, which must succeed.
pub fn flavor_new(env: &Env, name: &str, t: &str, lang: &str, dir: &std::path::Path) {
    let r = env.run(&[
        "flavor",
        "new",
        name,
        "--type",
        t,
        "--lang",
        lang,
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("run `make` there"), "{}", r.stderr);
    assert!(
        dir.join("wit/worlds.wit").exists(),
        "no wit/ in {}",
        dir.display()
    );
}

/// The project's own `make test` in `dir`, with this strata and `vars` (make variables);
/// returns what it printed on stdout and stderr, after checking that it passed.
pub fn make_test(dir: &std::path::Path, vars: &[(&str, &str)]) -> (String, String) {
    let make = std::process::Command::new("make")
        .arg("test")
        .arg(format!("STRATA={}", env!("CARGO_BIN_EXE_strata")))
        .args(vars.iter().map(|(k, v)| format!("{k}={v}")))
        .current_dir(dir)
        .output()
        .expect("make runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&make.stdout).into_owned(),
        String::from_utf8_lossy(&make.stderr).into_owned(),
    );
    assert!(
        make.status.success(),
        "`make test` failed in {}:\n{stdout}\n{stderr}",
        dir.display()
    );
    (stdout, stderr)
}

/// Where Rust projects made by these tests build: one target directory shared between
/// runs, so wit-bindgen and its dependencies are compiled once.
pub fn rust_target() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/flavor-new-test")
}

/// A Rust project made by `flavor new` in `dir`, built and tested by its own `make
/// test`; returns its `.wasm`. Its unit tests must have run: `tests` of them.
pub fn rust_project(env: &Env, name: &str, t: &str, dir: &std::path::Path, tests: usize) -> String {
    flavor_new(env, name, t, "rust", dir);
    // The project uses the SDK it carries, not wit-bindgen of its own.
    assert!(dir.join("vendor/strata-flavor-sdk/src/flavor.rs").exists());
    let target = rust_target();
    let (stdout, stderr) = make_test(dir, &[("CARGO_TARGET_DIR", target.to_str().unwrap())]);
    let ran = format!("test result: ok. {tests} passed");
    assert!(stdout.contains(&ran), "no `{ran}` in:\n{stdout}");
    assert!(
        stderr.contains(&format!("Flavor `{name}` passed.")),
        "{stderr}"
    );
    let wasm = target.join(format!(
        "wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    ));
    wasm.display().to_string()
}

/// The artifact store flavor `flavor` (built at `wasm`), registered, in a stack, brought
/// up and through a pipeline run; then every function of its `artifact-store` interface,
/// called in the sandbox as strata calls it, on the directory it was granted.
pub fn artifact_store_keeps_artifacts_in_its_grant(env: &Env, wasm: &str, flavor: &str) {
    use strata::sandbox::calls::{Context, Target, WriteMode};
    use strata::sandbox::{GrantedDir, Grants, Limits, Sandbox, cache::sha256_hex};

    env.ok(&["artifact-store", "flavor", "register", wasm]);
    let root = env.work.path().join("artifacts");
    let path = format!("--path={}", root.display());
    env.ok(&[
        "artifact-store",
        "register",
        "store",
        &format!("--flavor={flavor}"),
        &path,
    ]);
    env.ok(&[
        "stack", "register", "s", "-o", "default", "-a", "store", "--set",
    ]);
    let pipeline = env.path("p.yaml");
    std::fs::write(&pipeline, "name: training\nsteps:\n  - name: load\n").unwrap();
    let err = env.fail(&["pipeline", "run", &pipeline]);
    assert!(
        err.contains("artifact store `store` is not running"),
        "{err}"
    );
    env.ok(&["stack", "up"]);
    let mark = root.join(format!(".{flavor}"));
    assert!(mark.exists(), "`up` left no mark in {}", root.display());
    let run = env.json(&["pipeline", "run", &pipeline, "--param", "lr=0.1"]);
    assert_eq!(run["prepared"][0], "artifact-store/store", "{run}");
    let said = format!("artifacts of this run go to {}", root.display());
    assert!(run["logs"].to_string().contains(&said), "{run}");

    // Every artifact-store function, in the sandbox, granted only `root`.
    let sandbox = Sandbox::new(&env.work.path().join("cache")).expect("a sandbox");
    let bytes = std::fs::read(wasm).unwrap();
    let (loaded, _) = sandbox
        .inspect(wasm, &sha256_hex(&bytes), &bytes)
        .expect("it loads");
    let (grants, limits) = (
        Grants {
            dirs: vec![
                GrantedDir::open(&root, false)
                    .expect("the grant opens")
                    .expect("the grant exists"),
            ],
            secrets: vec![],
            net: Default::default(),
        },
        Limits::DEFAULT,
    );
    let store = Target {
        sandbox: &sandbox,
        loaded: &loaded,
        flavor,
        grants: &grants,
        limits: &limits,
    };
    let ctx = Context {
        component_id: "id".into(),
        component_name: "store".into(),
        config: vec![("path".into(), root.display().to_string())],
        state: None,
    };
    fn value<T>(called: strata::Result<strata::sandbox::Called<Result<T, String>>>) -> T {
        called.expect("no trap").value.expect("no error")
    }
    fn error<T: std::fmt::Debug>(
        called: strata::Result<strata::sandbox::Called<Result<T, String>>>,
    ) -> String {
        called.expect("no trap").value.unwrap_err()
    }
    let file = "models/v1/weights.bin";
    assert_eq!(
        value(store.store_write(&ctx, file, b"0123", WriteMode::CreateNew)),
        4
    );
    let again = error(store.store_write(&ctx, file, b"x", WriteMode::CreateNew));
    assert!(again.contains("exists"), "{again}");
    assert_eq!(
        value(store.store_write(&ctx, file, b"4567", WriteMode::Append)),
        8
    );
    assert_eq!(value(store.store_read(&ctx, file, 2, 3)), b"234");
    assert_eq!(value(store.store_read(&ctx, file, 7, 100)), b"7");
    assert_eq!(std::fs::read(root.join(file)).unwrap(), b"01234567");
    let stat = value(store.store_stat(&ctx, file));
    assert!(
        stat.size == 8 && !stat.is_dir && stat.modified_ms.is_some(),
        "{stat:?}"
    );
    assert!(value(store.store_stat(&ctx, "models")).is_dir);
    value(store.store_copy(&ctx, file, "best.bin", false));
    let names = |dir| -> Vec<String> {
        value(store.store_list(&ctx, dir))
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    assert_eq!(names(""), ["best.bin", "models"], "the mark is not listed");
    let taken = error(store.store_rename(&ctx, "best.bin", file, false));
    assert!(taken.contains("exists"), "{taken}");
    value(store.store_rename(&ctx, "best.bin", file, true));
    value(store.store_rename(&ctx, "models/v1", "models/v2", false));
    assert_eq!(names("models"), ["v2"]);
    value(store.store_makedirs(&ctx, "empty/dir"));
    assert!(value(store.store_exists(&ctx, "empty/dir")));
    assert!(error(store.store_remove(&ctx, "models", false)).contains("not empty"));
    value(store.store_remove(&ctx, "models", true));
    assert!(!value(store.store_exists(&ctx, "models")));
    // Nothing leaves the grant, and the flavor's own names are its own.
    std::fs::write(env.work.path().join("outside.txt"), "secret").unwrap();
    for escape in ["../outside.txt", "models/../../outside.txt", "/etc/passwd"] {
        let refused = error(store.store_read(&ctx, escape, 0, 100));
        assert!(
            refused.contains("outside") || refused.contains("leaves"),
            "{escape}: {refused}"
        );
    }
    let own = format!(".{flavor}");
    assert!(error(store.store_read(&ctx, &own, 0, 100)).contains("reserved"));
    assert!(error(store.store_remove(&ctx, "", true)).contains("root of the store"));
    let mut left: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [own.clone(), "empty".to_string()],
        "no unfinished writes left"
    );

    // `down --force` removes the mark and keeps the artifacts.
    env.ok(&["stack", "down", "--force"]);
    assert!(!mark.exists() && root.join("empty/dir").is_dir());
}

/// The orchestrator flavor `flavor` (built at `wasm`), registered with `max_parallel=2`
/// in a stack: it refuses a run until it is up, then schedules a run's steps in waves of
/// at most two, in dependency order, and refuses a cycle.
pub fn orchestrator_schedules_steps_in_dependency_order(env: &Env, wasm: &str, flavor: &str) {
    env.ok(&["orchestrator", "flavor", "register", wasm]);
    let err = env.refused(&[
        "orchestrator",
        "register",
        "o",
        &format!("--flavor={flavor}"),
        "--max_parallel=0",
    ]);
    assert!(
        err.contains("max_parallel must be 1 or more, not 0"),
        "{err}"
    );
    env.ok(&[
        "orchestrator",
        "register",
        "o",
        &format!("--flavor={flavor}"),
        "--max_parallel=2",
    ]);
    env.ok(&[
        "stack", "register", "s", "-o", "o", "-a", "default", "--set",
    ]);
    // A pipeline of `steps` (`name: upstream, …` each), written as YAML.
    let pipeline = env.path("p.yaml");
    let write = |steps: &[&str]| {
        let yaml: String = steps
            .iter()
            .map(|step| match step.split_once(": ") {
                Some((name, up)) => format!("  - name: {name}\n    upstream: [{up}]\n"),
                None => format!("  - name: {step}\n"),
            })
            .collect();
        std::fs::write(&pipeline, format!("name: p\nsteps:\n{yaml}")).unwrap();
    };
    write(&["load", "a: load", "b: load", "c: load", "report: c, b, a"]);
    env.ok(&["artifact-store", "up", "default"]);
    let err = env.fail(&["pipeline", "run", &pipeline]);
    assert!(err.contains("orchestrator `o` is not running"), "{err}");
    env.ok(&["stack", "up"]);
    let run = env.json(&["pipeline", "run", &pipeline]);
    assert_eq!(
        run["launch"]["schedule"],
        serde_json::json!([["load"], ["a", "b"], ["c"], ["report"]]),
        "{run}"
    );
    assert_eq!(run["launch"]["detail"], "5 steps in 4 waves", "{run}");
    let id = run["launch"]["orchestrator_run_id"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(id, format!("{flavor}-{}", run["run_id"].as_str().unwrap()));
    // A cycle or an unknown upstream step never reaches the flavor: strata refuses the
    // pipeline first, one error each.
    write(&["a: b", "b: a"]);
    let err = env.fail(&["pipeline", "run", &pipeline]);
    assert!(err.contains("cycle: a → b → a"), "{err}");
    write(&["a: ghost"]);
    let err = env.fail(&["pipeline", "run", &pipeline]);
    assert!(
        err.contains("step `a` names upstream step `ghost`, which the pipeline does not have"),
        "{err}"
    );
}
