//! Changing components and stacks after registration: every change is validated like a
//! registration, and a refused change leaves everything as it was.

use crate::support::{Env, wasm};

fn setup(env: &Env) {
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    env.ok(&[
        "alerter",
        "register",
        "ops",
        "--flavor=alerter",
        "--channel=ops",
        "--threshold=5",
        &format!("--path={}", env.path("ops")),
    ]);
    env.ok(&[
        "artifact-store",
        "register",
        "s1",
        "--flavor=local",
        &format!("--path={}", env.path("s1")),
    ]);
    env.ok(&[
        "artifact-store",
        "register",
        "s2",
        "--flavor=local",
        &format!("--path={}", env.path("s2")),
    ]);
    env.ok(&[
        "stack", "register", "prod", "-o", "default", "-a", "s1", "-l", "ops",
    ]);
}

fn config(env: &Env, t: &str, name: &str, key: &str) -> String {
    let d = env.json(&[t, "describe", name, "--no-status"]);
    d["config"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == key)
        .map(|c| c["value"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn update_merges_and_revalidates() {
    let env = Env::new();
    setup(&env);
    env.ok(&["alerter", "update", "ops", "--threshold=7"]);
    assert_eq!(config(&env, "alerter", "ops", "threshold"), "7");
    assert_eq!(config(&env, "alerter", "ops", "channel"), "ops");
    let err = env.refused(&["alerter", "update", "ops", "--threshold=1000"]);
    assert!(err.contains("field `threshold`"), "{err}");
    let err = env.refused(&["alerter", "update", "ops", "--colour=red"]);
    assert!(err.contains("unknown config key `colour`"), "{err}");
}

#[test]
fn remove_attribute_brings_back_the_default_but_never_drops_a_required_field() {
    let env = Env::new();
    setup(&env);
    env.ok(&["alerter", "remove-attribute", "ops", "threshold"]);
    let d = env.json(&["alerter", "describe", "ops", "--no-status"]);
    let t = d["config"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "threshold")
        .unwrap()
        .clone();
    assert_eq!(t["value"], "3");
    assert_eq!(t["default"], true);
    let err = env.refused(&["alerter", "remove-attribute", "ops", "channel"]);
    assert!(
        err.contains("`channel` is a required field of flavor `alerter` and has no default"),
        "{err}"
    );
}

#[test]
fn renaming_a_component_carries_its_stacks_along() {
    let env = Env::new();
    setup(&env);
    env.ok(&["artifact-store", "rename", "s1", "store_one"]);
    let d = env.json(&["stack", "describe", "prod"]);
    assert!(
        d["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "store_one"),
        "{d}"
    );
    let err = env.refused(&["artifact-store", "rename", "store_one", "s2"]);
    assert!(err.contains("artifact store `s2` already exists"), "{err}");
    let err = env.refused(&["orchestrator", "rename", "default", "x"]);
    assert!(
        err.contains("the default orchestrator cannot be renamed"),
        "{err}"
    );
}

#[test]
fn copy_makes_an_independent_component() {
    let env = Env::new();
    setup(&env);
    env.ok(&["alerter", "copy", "ops", "ops2"]);
    assert_eq!(config(&env, "alerter", "ops2", "threshold"), "5");
    env.ok(&["alerter", "update", "ops2", "--threshold=9"]);
    assert_eq!(config(&env, "alerter", "ops", "threshold"), "5");
    assert_ne!(
        env.json(&["alerter", "describe", "ops"])["id"],
        env.json(&["alerter", "describe", "ops2"])["id"]
    );
}

#[test]
fn stack_update_swaps_a_component_and_keeps_the_rules() {
    let env = Env::new();
    setup(&env);
    env.ok(&["stack", "update", "prod", "-a", "s2"]);
    let d = env.json(&["stack", "describe", "prod"]);
    let names: Vec<&str> = d["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["s2", "ops", "default"]);
    let err = env.refused(&["stack", "update", "prod", "-a", "nope"]);
    assert!(
        err.contains("artifact store `nope` does not exist"),
        "{err}"
    );
    let err = env.refused(&["stack", "update", "default", "-a", "s2"]);
    assert!(err.contains("the default stack cannot be changed"), "{err}");
}

#[test]
fn remove_component_takes_out_optional_components_only() {
    let env = Env::new();
    setup(&env);
    env.ok(&["stack", "remove-component", "prod", "--alerter", "ops"]);
    let d = env.json(&["stack", "describe", "prod"]);
    assert_eq!(d["components"].as_array().unwrap().len(), 2, "{d}");
    let err = env.refused(&["stack", "remove-component", "prod", "-a", "s1"]);
    assert!(err.contains("stack `prod` has no artifact store"), "{err}");
    let err = env.refused(&["stack", "remove-component", "prod", "--alerter", "ops"]);
    assert!(err.contains("stack `prod` has no alerter `ops`"), "{err}");
}

#[test]
fn stacks_rename_copy_and_delete_recursively() {
    let env = Env::new();
    setup(&env);
    env.ok(&["stack", "set", "prod"]);
    env.ok(&["stack", "rename", "prod", "production"]);
    assert_eq!(
        env.ok(&["stack", "get"]).trim(),
        "production",
        "the active stack did not follow its rename"
    );
    env.ok(&["stack", "copy", "production", "staging"]);
    env.ok(&["stack", "set", "default"]);
    // -r deletes what no other stack uses: staging still uses s1 and ops.
    env.ok(&["stack", "delete", "production", "-r"]);
    assert!(env.ok(&["artifact-store", "list"]).contains("s1"));
    let r = env.run(&["stack", "delete", "staging", "-r"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("artifact-store `s1`") && r.stderr.contains("alerter `ops`"),
        "{}",
        r.stderr
    );
    assert!(!env.ok(&["artifact-store", "list"]).contains("s1"));
    assert!(
        env.ok(&["orchestrator", "list"]).contains("default"),
        "-r deleted a default component"
    );
}

#[test]
fn delete_r_refuses_while_a_component_is_provisioned() {
    let env = Env::new();
    setup(&env);
    env.ok(&["artifact-store", "up", "s1"]);
    let err = env.refused(&["stack", "delete", "prod", "-r"]);
    assert!(
        err.contains("artifact store `s1` of stack `prod` is running"),
        "{err}"
    );
}

#[test]
fn moving_a_provisioned_component_is_refused_until_it_is_down() {
    // Found by the crash test: a path changed while provisioned left the old store's
    // marker behind, and a later component at that path could not provision.
    let env = Env::new();
    setup(&env);
    env.ok(&["artifact-store", "up", "s1"]);
    let err = env.refused(&[
        "artifact-store",
        "update",
        "s1",
        &format!("--path={}", env.path("moved")),
    ]);
    assert!(
        err.contains(
            "artifact store `s1` is running: changing `path` would leave what it created in"
        ),
        "{err}"
    );
    assert!(
        err.contains("strata artifact-store down s1 --force"),
        "{err}"
    );
    env.ok(&["artifact-store", "down", "s1", "--force"]);
    env.ok(&[
        "artifact-store",
        "update",
        "s1",
        &format!("--path={}", env.path("moved")),
    ]);
    env.ok(&["artifact-store", "up", "s1"]);
    assert!(
        std::path::Path::new(&env.path("moved"))
            .join(".strata-artifact-store")
            .exists()
    );
    assert!(
        !std::path::Path::new(&env.path("s1"))
            .join(".strata-artifact-store")
            .exists()
    );
}
