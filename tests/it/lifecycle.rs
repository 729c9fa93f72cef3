//! Lifecycle phases and state, pipeline runs with runtime configuration, secrets.

use crate::support::{Env, wasm};

fn alerter(env: &Env, channel: &str) -> String {
    let dir = env.path("alerts");
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    env.ok(&[
        "alerter",
        "register",
        "ops",
        "--flavor=alerter",
        &format!("--channel={channel}"),
        &format!("--path={dir}"),
    ]);
    dir
}

#[test]
fn state_returned_by_a_flavor_is_handed_back_on_the_next_call() {
    let env = Env::new();
    let dir = alerter(&env, "ops");
    env.ok(&["alerter", "up", "ops"]);
    assert!(std::path::Path::new(&dir).join("alerts.log").exists());
    let d = env.json(&["alerter", "describe", "ops"]);
    assert_eq!(d["phase"], "running");
    assert_eq!(d["status"]["Ok"]["provisioned"], true, "{d}");
    env.ok(&["alerter", "down", "ops"]);
    let d = env.json(&["alerter", "describe", "ops"]);
    assert_eq!(d["phase"], "provisioned");
    assert_eq!(d["status"]["Ok"]["running"], false, "{d}");
    env.ok(&["alerter", "down", "ops", "--force"]);
    assert!(!std::path::Path::new(&dir).join("alerts.log").exists());
    assert_eq!(
        env.json(&["alerter", "describe", "ops"])["phase"],
        "registered"
    );
}

#[test]
fn a_pipeline_run_hands_the_runtime_configuration_to_every_component() {
    let env = Env::new();
    let dir = alerter(&env, "ops");
    env.ok(&[
        "stack", "register", "s", "-o", "default", "-a", "default", "-l", "ops", "--set",
    ]);
    let pipeline = env.path("p.yaml");
    std::fs::write(&pipeline, "name: training\nsteps:\n  - name: load\n  - name: train\n    upstream: [load]\n  - name: report\n    upstream: [load]\n").unwrap();
    // The orchestrator refuses a run until the stack is up.
    let err = env.fail(&["pipeline", "run", &pipeline]);
    assert!(err.contains("is not running"), "{err}");
    env.ok(&["stack", "up"]);
    let r = env.json(&[
        "pipeline",
        "run",
        &pipeline,
        "--param",
        "runtime_param_1=3",
        "--param",
        "another_param=luna",
    ]);
    assert_eq!(
        r["launch"]["schedule"],
        serde_json::json!([["load"], ["report", "train"]]),
        "{r}"
    );
    assert_eq!(
        r["prepared"],
        serde_json::json!([
            "artifact-store/default",
            "alerter/ops",
            "orchestrator/default"
        ]),
        "{r}"
    );
    let log = std::fs::read_to_string(std::path::Path::new(&dir).join("alerts.log")).unwrap();
    assert!(
        log.contains("another_param") && log.contains("runtime_param_1"),
        "{log}"
    );
    std::fs::write(
        &pipeline,
        "name: loop\nsteps:\n  - name: a\n    upstream: [b]\n  - name: b\n    upstream: [a]\n",
    )
    .unwrap();
    // strata checks the pipeline itself before any component is called.
    let err = env.fail(&["pipeline", "run", &pipeline]);
    assert!(err.contains("cycle: a → b → a"), "{err}");
}

#[test]
fn secrets_are_masked_resolved_per_call_and_never_stored_in_clear() {
    let env = Env::new();
    let canary = "canary-7f3a9c1e-do-not-leak";
    env.ok(&["secret", "create", "slack", &format!("--channel={canary}")]);
    let listed = env.ok(&["secret", "list"]);
    assert!(
        listed.contains("slack") && listed.contains("channel") && !listed.contains(canary),
        "{listed}"
    );
    assert!(!env.ok(&["secret", "get", "slack"]).contains(canary));
    assert!(
        env.ok(&["secret", "get", "slack", "--reveal"])
            .contains(canary)
    );
    let dir = alerter(&env, "{{slack.channel}}");
    env.ok(&[
        "stack", "register", "s", "-o", "default", "-a", "default", "-l", "ops",
    ]);
    let set = env.run(&["stack", "set", "s"]);
    assert_eq!(set.code, 0, "{}", set.stderr);
    let up = env.run(&["stack", "up", "--verbose"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert!(
        !up.stdout.contains(canary) && !up.stderr.contains(canary),
        "the secret leaked into output"
    );
    assert!(
        std::fs::read_to_string(std::path::Path::new(&dir).join("alerts.log"))
            .unwrap()
            .contains(canary),
        "the flavor did not get the resolved value"
    );
    let d = env.ok(&["alerter", "describe", "ops"]);
    assert!(
        d.contains("{{slack.channel}}") && !d.contains(canary),
        "{d}"
    );
    // Not in the store's files, in clear.
    for entry in walk(env.home()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "the secret is in clear in {}",
            entry.display()
        );
    }
    // A reference to a secret that is gone is reported at `stack set`, naming everything.
    env.ok(&["stack", "set", "default"]);
    env.ok(&["secret", "delete", "slack"]);
    let err = env.refused(&["stack", "set", "s"]);
    assert!(
        err.contains(
            "secret `slack` (referenced by field `channel` of alerter `ops`) does not exist"
        ),
        "{err}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[test]
fn commands_run_at_the_same_time_wait_for_each_other_and_lose_nothing() {
    let env = Env::new();
    env.ok(&["init"]);
    let bin = env!("CARGO_BIN_EXE_strata");
    let children: Vec<_> = (0..6)
        .map(|i| {
            std::process::Command::new(bin)
                .args([
                    "artifact-store",
                    "register",
                    &format!("s{i}"),
                    "--flavor=local",
                    &format!("--path={}", env.path(&format!("s{i}"))),
                ])
                .env("STRATA_HOME", env.home())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names: Vec<String> = env
        .json(&["artifact-store", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    for i in 0..6 {
        assert!(names.contains(&format!("s{i}")), "s{i} lost: {names:?}");
    }
}
