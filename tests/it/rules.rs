//! Every bad input ends with `error: …` and `hint: …`, exit code 1, and the stored
//! state exactly as it was (compared through a JSON snapshot of everything).

use crate::support::{Env, wasm};

fn with_store(env: &Env) -> String {
    let p = env.path("store");
    env.ok(&[
        "artifact-store",
        "register",
        "my_store",
        "--flavor=local",
        &format!("--path={p}"),
    ]);
    p
}

#[test]
fn a_stack_needs_an_orchestrator_and_an_artifact_store() {
    let env = Env::new();
    let err = env.refused(&["stack", "register", "s", "-a", "default"]);
    assert!(err.contains("stack `s` has no orchestrator"), "{err}");
    let err = env.refused(&["stack", "register", "s", "-o", "default"]);
    assert!(err.contains("stack `s` has no artifact store"), "{err}");
}

#[test]
fn a_stack_takes_one_component_per_type() {
    let env = Env::new();
    with_store(&env);
    let before = env.snapshot();
    let err = env.fail(&[
        "stack", "register", "s", "-o", "default", "-a", "default", "-a", "my_store",
    ]);
    assert!(err.contains("cannot be used multiple times"), "{err}");
    assert_eq!(before, env.snapshot());
}

#[test]
fn a_stack_refuses_components_that_do_not_exist() {
    let env = Env::new();
    let err = env.refused(&["stack", "register", "s", "-o", "default", "-a", "nope"]);
    assert!(
        err.contains("artifact store `nope` does not exist"),
        "{err}"
    );
    let err = env.refused(&[
        "stack", "register", "s", "-o", "default", "-a", "default", "-m", "meta",
    ]);
    assert!(
        err.contains("metadata store `meta` does not exist"),
        "{err}"
    );
}

#[test]
fn unknown_flavors_are_refused_with_the_known_ones() {
    let env = Env::new();
    let err = env.refused(&[
        "artifact-store",
        "register",
        "x",
        "--flavor=s3",
        "--path=s3://b",
    ]);
    assert!(
        err.contains("artifact store flavor `s3` does not exist"),
        "{err}"
    );
    assert!(err.contains("registered: local"), "{err}");
}

#[test]
fn a_missing_flavor_flag_is_named() {
    let env = Env::new();
    let err = env.refused(&["artifact-store", "register", "x", "--path=/tmp/x"]);
    assert!(err.contains("needs a flavor"), "{err}");
}

#[test]
fn unknown_config_keys_are_refused() {
    let env = Env::new();
    let err = env.refused(&[
        "artifact-store",
        "register",
        "x",
        "--flavor=local",
        &format!("--path={}", env.path("x")),
        "--colour=red",
    ]);
    assert!(
        err.contains("unknown config key `colour` for flavor `local`: it accepts: path"),
        "{err}"
    );
}

#[test]
fn a_missing_required_field_is_named_with_its_description() {
    let env = Env::new();
    let err = env.refused(&["artifact-store", "register", "x", "--flavor=local"]);
    assert!(
        err.contains("missing required field `path` (path)"),
        "{err}"
    );
    assert!(err.contains("flavor describe local"), "{err}");
}

#[test]
fn a_value_of_the_wrong_kind_is_refused() {
    let env = Env::new();
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    let err = env.refused(&[
        "alerter",
        "register",
        "a",
        "--flavor=alerter",
        "--channel=ops",
        "--threshold=lots",
        &format!("--path={}", env.path("a")),
    ]);
    assert!(
        err.contains("field `threshold` (integer): `lots` is not an integer"),
        "{err}"
    );
}

#[test]
fn the_flavors_own_validation_is_reported_per_field() {
    let env = Env::new();
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    let err = env.refused(&[
        "alerter",
        "register",
        "a",
        "--flavor=alerter",
        "--channel=ops",
        "--threshold=500",
        &format!("--path={}", env.path("a")),
    ]);
    assert!(err.contains("field `threshold`"), "{err}");
}

#[test]
fn a_path_with_an_unsupported_scheme_is_refused() {
    let env = Env::new();
    let err = env.refused(&[
        "artifact-store",
        "register",
        "x",
        "--flavor=local",
        "--path=s3://bucket/x",
    ]);
    assert!(
        err.contains("flavor `local` does not support `s3://` paths; it supports local paths"),
        "{err}"
    );
}

#[test]
fn grants_of_the_whole_disk_or_of_strata_itself_are_refused() {
    let env = Env::new();
    let err = env.refused(&[
        "artifact-store",
        "register",
        "x",
        "--flavor=local",
        "--path=/",
    ]);
    assert!(err.contains("whole file system"), "{err}");
    let home = env.home().display().to_string();
    let err = env.refused(&[
        "artifact-store",
        "register",
        "x",
        "--flavor=local",
        &format!("--path={home}"),
    ]);
    assert!(err.contains("holds strata's home"), "{err}");
}

#[test]
fn duplicate_names_are_refused() {
    let env = Env::new();
    with_store(&env);
    let err = env.refused(&[
        "artifact-store",
        "register",
        "my_store",
        "--flavor=local",
        &format!("--path={}", env.path("other")),
    ]);
    assert!(
        err.contains("artifact store `my_store` already exists"),
        "{err}"
    );
    env.ok(&["stack", "register", "s", "-o", "default", "-a", "my_store"]);
    let err = env.refused(&["stack", "register", "s", "-o", "default", "-a", "default"]);
    assert!(err.contains("stack `s` already exists"), "{err}");
    let err = env.refused(&[
        "artifact-store",
        "register",
        "bad name",
        "--flavor=local",
        "--path=/tmp/x",
    ]);
    assert!(err.contains("not a valid artifact store name"), "{err}");
}

#[test]
fn a_config_key_given_twice_is_refused() {
    let env = Env::new();
    let err = env.refused(&[
        "artifact-store",
        "register",
        "x",
        "--flavor=local",
        "--path=/tmp/a",
        "--path=/tmp/b",
    ]);
    assert!(err.contains("`--path` is given twice"), "{err}");
}

#[test]
fn components_in_use_the_active_stack_and_defaults_cannot_be_deleted() {
    let env = Env::new();
    with_store(&env);
    env.ok(&[
        "stack", "register", "s", "-o", "default", "-a", "my_store", "--set",
    ]);
    let err = env.refused(&["artifact-store", "delete", "my_store"]);
    assert!(
        err.contains("artifact store `my_store` is used by stack s"),
        "{err}"
    );
    let err = env.refused(&["stack", "delete", "s"]);
    assert!(err.contains("stack `s` is the active stack"), "{err}");
    let err = env.refused(&["stack", "delete", "default"]);
    assert!(err.contains("the default stack cannot be deleted"), "{err}");
    let err = env.refused(&["orchestrator", "delete", "default"]);
    assert!(
        err.contains("the default orchestrator cannot be deleted"),
        "{err}"
    );
    let err = env.refused(&["artifact-store", "flavor", "delete", "local"]);
    assert!(err.contains("built in and cannot be deleted"), "{err}");
    let err = env.refused(&["stack", "set", "nope"]);
    assert!(err.contains("stack `nope` does not exist"), "{err}");
}

#[test]
fn a_provisioned_component_cannot_be_deleted_until_it_is_down() {
    let env = Env::new();
    with_store(&env);
    env.ok(&["artifact-store", "up", "my_store"]);
    let err = env.refused(&["artifact-store", "delete", "my_store"]);
    assert!(
        err.contains("is running") && err.contains("down my_store --force"),
        "{err}"
    );
    env.ok(&["artifact-store", "down", "my_store", "--force"]);
    env.ok(&["artifact-store", "delete", "my_store"]);
}

#[test]
fn a_flavor_in_use_cannot_be_deleted() {
    let env = Env::new();
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    env.ok(&[
        "alerter",
        "register",
        "a",
        "--flavor=alerter",
        "--channel=ops",
        &format!("--path={}", env.path("a")),
    ]);
    let err = env.refused(&["alerter", "flavor", "delete", "alerter"]);
    assert!(err.contains("is used by 1 component: a"), "{err}");
    env.ok(&["alerter", "delete", "a"]);
    env.ok(&["alerter", "flavor", "delete", "alerter"]);
}

#[test]
fn registering_the_same_flavor_twice_is_refused() {
    let env = Env::new();
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    let err = env.refused(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    assert!(err.contains("with this exact code"), "{err}");
}

#[test]
fn files_that_are_not_components_are_refused() {
    let env = Env::new();
    let text = env.path("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let err = env.refused(&["alerter", "flavor", "register", &text]);
    assert!(err.contains("not a WebAssembly file"), "{err}");
    let module = env.path("core.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let err = env.refused(&["alerter", "flavor", "register", &module]);
    assert!(
        err.contains("core WebAssembly module, not a component"),
        "{err}"
    );
    let err = env.refused(&["alerter", "flavor", "register", &env.path("missing.wasm")]);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn a_wrong_flag_is_a_clear_error() {
    let env = Env::new();
    let r = env.run(&["stack", "list", "--bogus"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("error: unexpected argument '--bogus'"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_flavor_s_rules_about_the_rest_of_its_stack_are_kept() {
    let env = Env::new();
    env.ok(&[
        "step-operator",
        "flavor",
        "register",
        &wasm("fixture_needy"),
    ]);
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_trap")]);
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    env.ok(&["step-operator", "register", "runner", "--flavor=needy"]);
    env.ok(&["alerter", "register", "crashy", "--flavor=trap"]);
    env.ok(&[
        "alerter",
        "register",
        "ops",
        "--flavor=alerter",
        "--channel=ops",
        &format!("--path={}", env.path("alerts")),
    ]);
    let stack = [
        "stack", "register", "s", "-o", "default", "-a", "default", "-s", "runner",
    ];
    let err = env.refused(&stack);
    assert!(
        err.contains(
            "step operator `runner` (flavor `needy`) needs an alerter in stack `s`: it reports failed steps through the stack's alerter"
        ),
        "{err}"
    );
    assert!(err.contains("hint: add one with `--alerter NAME`"), "{err}");
    let err = env.refused(&[&stack[..], &["-l", "crashy"]].concat());
    assert!(
        err.contains(
            "step operator `runner` (flavor `needy`) cannot work with alerter `crashy` (flavor `trap`) in stack `s`: an alerter that crashes would hide failed steps"
        ),
        "{err}"
    );
    env.ok(&[&stack[..], &["-l", "ops"]].concat());
    // The same rules hold for every later change, and for an import.
    let err = env.refused(&["stack", "update", "s", "-l", "crashy"]);
    assert!(err.contains("cannot work with alerter `crashy`"), "{err}");
    let err = env.refused(&["stack", "remove-component", "s", "-l", "ops"]);
    assert!(err.contains("needs an alerter in stack `s`"), "{err}");
    let file = env.path("s.yaml");
    env.ok(&["stack", "export", "s", &file]);
    let text = std::fs::read_to_string(&file).unwrap();
    let (head, tail) = text.split_at(text.find("- type: alerter").unwrap());
    let rest = &tail[tail[1..].find("- type:").unwrap() + 1..];
    std::fs::write(&file, format!("{head}{rest}")).unwrap();
    let err = env.refused(&["stack", "import", &file, "s2"]);
    assert!(err.contains("needs an alerter in stack `s2`"), "{err}");
    env.ok(&["stack", "set", "s"]);
    env.ok(&["stack", "up"]);
}
