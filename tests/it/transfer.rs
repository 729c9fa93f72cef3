//! `stack export` / `stack import`, and secrets given from files or renamed: a stack
//! moves between homes with its flavors pinned, and a refused import changes nothing.

use crate::support::{Env, wasm};

/// A stack `prod` with an alerter whose channel is a secret reference.
fn prod(env: &Env) {
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    env.ok(&[
        "secret",
        "create",
        "slack",
        "--channel=canary-never-exported",
    ]);
    env.ok(&[
        "alerter",
        "register",
        "ops",
        "--flavor=alerter",
        "--channel={{slack.channel}}",
        &format!("--path={}", env.path("alerts")),
    ]);
    env.ok(&[
        "artifact-store",
        "register",
        "s1",
        "--flavor=local",
        &format!("--path={}", env.path("s1")),
    ]);
    env.ok(&[
        "stack", "register", "prod", "-o", "default", "-a", "s1", "-l", "ops",
    ]);
}

fn members(env: &Env, stack: &str) -> Vec<(String, String)> {
    env.json(&["stack", "describe", stack])["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["component_type"].as_str().unwrap().to_string(),
                m["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn an_exported_stack_is_rebuilt_in_another_home() {
    let a = Env::new();
    prod(&a);
    let file = a.path("prod.yaml");
    a.ok(&["stack", "export", "prod", &file]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("{{slack.channel}}"), "{text}");
    assert!(!text.contains("canary-never-exported"), "{text}");
    let sha = a.json(&["alerter", "flavor", "describe", "alerter"])["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&sha), "the flavor is not pinned:\n{text}");
    // Exporting again over the file is refused unless --force.
    let err = a.refused(&["stack", "export", "prod", &file]);
    assert!(err.contains("already exists"), "{err}");
    a.ok(&["stack", "export", "prod", &file, "--force"]);
    // `-` writes to stdout.
    assert_eq!(a.ok(&["stack", "export", "prod", "-"]), text);

    let b = Env::new();
    // The flavor is missing in the new home: refused, naming the command that fixes it.
    let err = b.refused(&["stack", "import", &file]);
    assert!(
        err.contains("alerter flavor `alerter` (needed by alerter `ops`) does not exist"),
        "{err}"
    );
    assert!(err.contains("strata alerter flavor register"), "{err}");
    b.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    b.ok(&["stack", "import", &file]);
    assert_eq!(members(&b, "prod"), members(&a, "prod"));
    let d = b.json(&["alerter", "describe", "ops", "--no-status"]);
    let channel = d["config"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "channel")
        .unwrap()["value"]
        .clone();
    assert_eq!(channel, "{{slack.channel}}");
    // The secret itself did not travel: `stack set` says which one is missing.
    let err = b.refused(&["stack", "set", "prod"]);
    assert!(err.contains("secret `slack`"), "{err}");
    // Importing again under a new name reuses the identical components.
    let r = b.json(&["stack", "import", &file, "prod2"]);
    assert_eq!(r["created"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["reused"].as_array().unwrap().len(), 3, "{r}");
}

#[test]
fn import_refuses_other_flavor_code_unless_forced() {
    let a = Env::new();
    prod(&a);
    let file = a.path("prod.yaml");
    a.ok(&["stack", "export", "prod", &file]);
    let sha = a.json(&["alerter", "flavor", "describe", "alerter"])["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let other = "0".repeat(64);
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace(&sha, &other);
    let tampered = a.path("other.yaml");
    std::fs::write(&tampered, text).unwrap();
    let err = a.refused(&["stack", "import", &tampered, "p2"]);
    assert!(
        err.contains(&format!(
            "alerter flavor `alerter` (needed by alerter `ops`) is registered with other code: the file pins sha256:000000000000, this home has sha256:{}",
            &sha[..12]
        )),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    let r = a.run(&["stack", "import", &tampered, "p2", "--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning: alerter flavor `alerter` runs other code"),
        "{}",
        r.stderr
    );
    assert_eq!(members(&a, "p2"), members(&a, "prod"));
}

#[test]
fn import_renames_a_component_whose_name_is_taken_by_another() {
    let a = Env::new();
    prod(&a);
    let file = a.path("prod.yaml");
    a.ok(&["stack", "export", "prod", &file]);
    // `s1` now means another store in this home.
    a.ok(&["stack", "delete", "prod"]);
    a.ok(&[
        "artifact-store",
        "update",
        "s1",
        &format!("--path={}", a.path("elsewhere")),
    ]);
    let r = a.run(&["stack", "import", &file]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "`s1` is taken by a component with another configuration: imported as `prod-s1`"
        ),
        "{}",
        r.stderr
    );
    assert!(members(&a, "prod").contains(&("artifact-store".into(), "prod-s1".into())));
    // A second import under the same stack name is refused as a whole.
    let err = a.refused(&["stack", "import", &file]);
    assert!(err.contains("stack `prod` already exists"), "{err}");
}

#[test]
fn import_refuses_what_is_not_an_export() {
    let env = Env::new();
    let bad = env.path("bad.yaml");
    std::fs::write(&bad, "stack: x\ncomponents: []\nsurprise: 1\n").unwrap();
    let err = env.refused(&["stack", "import", &bad]);
    assert!(
        err.contains("is not a stack export: unknown field `surprise`"),
        "{err}"
    );
    std::fs::write(
        &bad,
        "format: 9\nstrata_version: 9.0.0\nstack: x\ncomponents: []\n",
    )
    .unwrap();
    let err = env.refused(&["stack", "import", &bad]);
    assert!(
        err.contains("export format 9 (written by strata 9.0.0); this strata reads format 1"),
        "{err}"
    );
    // A stack without an orchestrator is refused by the same rules as `stack register`.
    std::fs::write(
        &bad,
        "format: 1\nstrata_version: 0.1.0\nstack: x\ncomponents: []\n",
    )
    .unwrap();
    let err = env.refused(&["stack", "import", &bad]);
    assert!(err.contains("stack `x` has no artifact store"), "{err}");
    let err = env.refused(&["stack", "import", &env.path("missing.yaml")]);
    assert!(err.contains("cannot read"), "{err}");
    // Hand-edited entries: a hash that is not one, a name `register` would refuse.
    let entry = |name: &str, sha: &str| {
        format!(
            "format: 1\nstrata_version: 0.1.0\nstack: x\ncomponents:\n- type: orchestrator\n  name: {name}\n  flavor:\n    name: local\n    sha256: {sha}\n    source: built-in\n"
        )
    };
    std::fs::write(&bad, entry("o", "aaaaaaaaaaaé")).unwrap();
    let err = env.refused(&["stack", "import", &bad]);
    assert!(err.contains("is not 64 hex digits"), "{err}");
    std::fs::write(&bad, entry("'a b'", &"0".repeat(64))).unwrap();
    let err = env.refused(&["stack", "import", &bad]);
    assert!(err.contains("a b"), "{err}");
}

#[test]
fn secret_values_come_from_files_and_a_rename_follows_references() {
    let env = Env::new();
    let json = env.path("v.json");
    std::fs::write(&json, r#"{"user": "bob", "port": 5432}"#).unwrap();
    let yaml = env.path("v.yaml");
    std::fs::write(&yaml, "token: abc\n").unwrap();
    env.ok(&[
        "secret",
        "create",
        "db",
        &format!("--values=@{json}"),
        &format!("--values=@{yaml}"),
        "--extra=1",
    ]);
    let s = env.json(&["secret", "get", "db", "--reveal"]);
    assert_eq!(
        s["values"],
        serde_json::json!({"extra": "1", "port": "5432", "token": "abc", "user": "bob"})
    );
    env.ok(&["secret", "update", "db", r#"--values={"user": "eve"}"#]);
    assert_eq!(
        env.json(&["secret", "get", "db", "--reveal"])["values"]["user"],
        "eve"
    );
    let err = env.refused(&[
        "secret",
        "create",
        "x",
        &format!("--values=@{json}"),
        "--user=al",
    ]);
    assert!(err.contains("key `user` is given twice"), "{err}");
    let list = env.path("list.yaml");
    std::fs::write(&list, "- 1\n").unwrap();
    let err = env.refused(&["secret", "create", "x", &format!("--values=@{list}")]);
    assert!(err.contains("is not a mapping"), "{err}");
    let float = env.path("f.yaml");
    std::fs::write(&float, "version: 1.10\n").unwrap();
    let err = env.refused(&["secret", "create", "x", &format!("--values=@{float}")]);
    assert!(
        err.contains("the value of `version` is the number 1.1"),
        "{err}"
    );
    let err = env.refused(&["secret", "create", "x", "--values=@/nonexistent/v.json"]);
    assert!(err.contains("cannot read `/nonexistent/v.json`"), "{err}");

    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    env.ok(&[
        "alerter",
        "register",
        "ops",
        "--flavor=alerter",
        "--channel={{db.user}}",
        &format!("--path={}", env.path("alerts")),
    ]);
    let err = env.refused(&["secret", "rename", "db", "db"]);
    assert!(err.contains("secret `db` already exists"), "{err}");
    let r = env.run(&["secret", "rename", "db", "database"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("Rewrote the references in alerter `ops`"),
        "{}",
        r.stderr
    );
    let d = env.ok(&["alerter", "describe", "ops", "--no-status"]);
    assert!(d.contains("{{database.user}}"), "{d}");
    env.ok(&[
        "stack", "register", "s", "-o", "default", "-a", "default", "-l", "ops", "--set",
    ]);
    let err = env.refused(&["secret", "rename", "nope", "x"]);
    assert!(err.contains("secret `nope` does not exist"), "{err}");
}
