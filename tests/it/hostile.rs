//! Flavors that attack, one way each (see flavors/fixtures/README.md). Every one ends in
//! an error naming the flavor and the call (or is refused at registration), the stored
//! state keeps only the recorded failure, and strata keeps working afterwards.

use std::time::{Duration, Instant};

use crate::support::{Env, wasm};

/// Terminal escapes in everything a flavor says (fixture `ansi`), and names with control
/// characters (issue 13, class 4).
mod ansi;

/// Registers fixture `name` as an alerter flavor and a component `c` of it.
fn alerter(env: &Env, name: &str, flavor_args: &[&str], config: &[&str]) {
    let path = wasm(&format!("fixture_{name}"));
    let mut args = vec!["alerter", "flavor", "register", path.as_str()];
    args.extend(flavor_args);
    env.ok(&args);
    let flavor = format!("--flavor={name}");
    let mut args = vec!["alerter", "register", "c", flavor.as_str()];
    args.extend(config);
    env.ok(&args);
}

/// strata still answers, and the component is where it was, with the failure recorded.
fn still_works(env: &Env, call: &str) -> serde_json::Value {
    assert!(env.ok(&["stack", "list"]).contains("default"));
    let d = env.json(&["alerter", "describe", "c", "--no-status"]);
    assert_eq!(d["phase"], "registered", "{d}");
    assert_eq!(d["last_error"]["call"], call, "{d}");
    d
}

#[test]
fn a_trap_is_an_error_for_that_component() {
    let env = Env::new();
    alerter(&env, "trap", &[], &[]);
    let err = env.fail(&["alerter", "up", "c"]);
    assert!(
        err.contains("flavor `trap` failed during `provision`: it trapped"),
        "{err}"
    );
    assert!(err.contains("unreachable"), "{err}");
    still_works(&env, "provision");
}

#[test]
fn an_endless_loop_is_stopped_at_its_deadline() {
    let env = Env::new();
    alerter(&env, "loop", &["--timeout-ms", "400"], &[]);
    let started = Instant::now();
    let err = env.fail(&["alerter", "up", "c"]);
    let took = started.elapsed();
    assert!(
        err.contains("flavor `loop` failed during `status`: it ran past its deadline of 400 ms"),
        "{err}"
    );
    // A bound on termination, not a speed claim: without the deadline this never ends.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    still_works(&env, "status");
}

#[test]
fn a_memory_bomb_hits_its_cap() {
    let env = Env::new();
    alerter(&env, "membomb", &["--memory-mb", "64"], &[]);
    let err = env.fail(&["alerter", "up", "c"]);
    assert!(err.contains("flavor `membomb` failed during `provision`: it tried to use more than its memory cap of 64 MiB"), "{err}");
    assert!(err.contains("--memory-mb"), "{err}");
    still_works(&env, "provision");
}

#[test]
fn a_huge_return_value_is_refused() {
    let env = Env::new();
    alerter(&env, "bigreturn", &[], &[]);
    let err = env.fail(&["alerter", "up", "c"]);
    assert!(
        err.contains("returned 8388608 bytes, more than the 1048576 bytes"),
        "{err}"
    );
    still_works(&env, "provision");
}

#[test]
fn log_spam_is_capped_and_counted() {
    let env = Env::new();
    alerter(&env, "logspam", &[], &[]);
    let r = env.run(&["alerter", "up", "c", "--verbose"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("more lines dropped"), "{}", r.stderr);
    let shown = r.stderr.lines().filter(|l| l.starts_with("log: ")).count();
    assert!(shown <= 260, "{shown} log lines shown");
}

#[test]
fn a_flavor_sees_only_its_granted_directory() {
    let env = Env::new();
    let dir = env.path("grant");
    // A symlink inside the grant that points out, placed before the flavor runs.
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink("/etc", std::path::Path::new(&dir).join("outside")).unwrap();
    alerter(&env, "escape", &[], &[&format!("--path={dir}")]);
    let r = env.run(&["alerter", "up", "c"]);
    assert_eq!(
        r.code, 0,
        "the escape fixture got out or could not write inside: {}",
        r.stderr
    );
    assert!(std::path::Path::new(&dir).join("inside.txt").exists());
}

#[test]
fn a_flavor_claiming_another_type_is_refused() {
    let env = Env::new();
    let err = env.refused(&["alerter", "flavor", "register", &wasm("fixture_wrongtype")]);
    assert!(
        err.contains(
            "describes itself as an orchestrator flavor (`wrongtype`), not an alerter flavor"
        ),
        "{err}"
    );
}

#[test]
fn a_flavor_built_for_a_future_contract_is_refused() {
    let env = Env::new();
    let err = env.refused(&["alerter", "flavor", "register", &wasm("fixture_future")]);
    assert!(
        err.contains("built against `@0.3.0`") && err.contains("strata:flavor@0.2.0"),
        "{err}"
    );
}

#[test]
fn a_malformed_schema_is_refused() {
    let env = Env::new();
    let err = env.refused(&["alerter", "flavor", "register", &wasm("fixture_badschema")]);
    assert!(err.contains("field `note` is declared twice"), "{err}");
    assert!(err.contains("field name `Bad Name!` is not valid"), "{err}");
}

#[test]
fn a_tampered_compiled_cache_is_recompiled_never_loaded() {
    // A daemon keeps loaded code in memory; the cache on disk is read by a new process.
    let env = Env::embedded();
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
    let sha = env.json(&["alerter", "flavor", "describe", "alerter"])["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let cache = env.home().join("cache");
    let engine_dir = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = engine_dir.join(format!("{sha}.cwasm"));
    assert!(file.exists(), "no cache file at {}", file.display());
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let r = env.run(&[
        "alerter",
        "register",
        "a",
        "--flavor=alerter",
        "--channel=ops",
        &format!("--path={}", env.path("a")),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("had been changed on disk"),
        "{}",
        r.stderr
    );
    assert_ne!(
        std::fs::read(&file).unwrap(),
        bytes,
        "the tampered file is still there"
    );
}

#[test]
fn endless_recursion_is_a_trap_for_that_component() {
    let env = Env::new();
    alerter(&env, "recursion", &[], &[]);
    let started = Instant::now();
    let err = env.fail(&["alerter", "up", "c"]);
    assert!(
        err.contains("flavor `recursion` failed during `provision`: it trapped")
            && err.contains("stack overflow"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    still_works(&env, "provision");
}

#[test]
fn a_tight_loop_of_host_calls_is_stopped_at_its_deadline() {
    let env = Env::new();
    alerter(&env, "hostloop", &["--timeout-ms", "300"], &[]);
    let started = Instant::now();
    let r = env.run(&["alerter", "up", "c", "--verbose"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "flavor `hostloop` failed during `provision`: it ran past its deadline of 300 ms"
        ),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // What it logged is capped, and says how much was dropped.
    let logged = r.stderr.lines().filter(|l| l.contains("host call")).count();
    assert!(logged <= 256, "{logged} log lines kept");
    still_works(&env, "provision");
}

#[test]
fn a_flavor_importing_what_strata_does_not_provide_is_refused() {
    let env = Env::new();
    let err = env.refused(&["alerter", "flavor", "register", &wasm("fixture_badimport")]);
    assert!(
        err.contains("it imports `fixture:extra/network`, which strata does not provide"),
        "{err}"
    );
}

#[test]
fn a_component_can_have_its_own_deadline_and_memory_cap() {
    let env = Env::new();
    // The flavor keeps the default deadline (10 s); the component sets 300 ms.
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_loop")]);
    env.ok(&[
        "alerter",
        "register",
        "c",
        "--flavor=loop",
        "--timeout-ms=300",
    ]);
    let d = env.json(&["alerter", "describe", "c", "--no-status"]);
    assert_eq!(d["timeout_ms"], 300, "{d}");
    assert_eq!(d["own_limits"]["timeout_ms"], 300, "{d}");
    assert_eq!(d["memory_mb"], 256, "{d}");
    let shown = env.ok(&["alerter", "describe", "c", "--no-status"]);
    assert!(
        shown.contains("300 ms per call (this component), 256 MiB memory (flavor)"),
        "{shown}"
    );
    let started = Instant::now();
    let err = env.fail(&["alerter", "up", "c"]);
    assert!(err.contains("it ran past its deadline of 300 ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A memory cap set on the component stops the memory bomb at that cap.
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_membomb")]);
    env.ok(&[
        "alerter",
        "register",
        "m",
        "--flavor=membomb",
        "--memory-mb",
        "64",
    ]);
    let err = env.fail(&["alerter", "up", "m"]);
    assert!(err.contains("64 MiB"), "{err}");
    // Out of range, or not a number: refused, nothing changes.
    let err = env.refused(&["alerter", "update", "c", "--timeout-ms=5"]);
    assert!(err.contains("--timeout-ms 5 is out of range"), "{err}");
    let err = env.refused(&["alerter", "update", "c", "--memory-mb=lots"]);
    assert!(
        err.contains("`--memory-mb` needs a whole number, not `lots`"),
        "{err}"
    );
    env.ok(&["alerter", "update", "c", "--timeout-ms=500"]);
    assert_eq!(
        env.json(&["alerter", "describe", "c", "--no-status"])["timeout_ms"],
        500
    );
}

#[test]
fn an_endless_loop_in_any_lifecycle_call_is_stopped_at_its_deadline() {
    let env = Env::new();
    env.ok(&[
        "alerter",
        "flavor",
        "register",
        &wasm("fixture_loop"),
        "--timeout-ms",
        "300",
    ]);
    let bounded = |args: &[&str], call: &str| {
        let started = Instant::now();
        let err = env.fail(args);
        assert!(
            err.contains(&format!(
                "flavor `loop` failed during `{call}`: it ran past its deadline of 300 ms"
            )),
            "{call}: {err}"
        );
        // A bound on termination, not a speed claim: without the deadline this never ends.
        assert!(started.elapsed() < Duration::from_secs(10), "{call}");
    };
    let register = |name: &str, loop_in: &str| {
        env.ok(&[
            "alerter",
            "register",
            name,
            "--flavor=loop",
            &format!("--loop-in={loop_in}"),
        ])
    };
    // validate runs at registration: refused, nothing stored.
    let before = env.snapshot();
    bounded(
        &[
            "alerter",
            "register",
            "v",
            "--flavor=loop",
            "--loop-in=validate",
        ],
        "validate",
    );
    assert_eq!(before, env.snapshot());
    register("st", "status");
    bounded(&["alerter", "up", "st"], "status");
    register("pr", "provision");
    bounded(&["alerter", "up", "pr"], "provision");
    register("re", "resume");
    bounded(&["alerter", "up", "re"], "resume");
    register("su", "suspend");
    env.ok(&["alerter", "up", "su"]);
    bounded(&["alerter", "down", "su"], "suspend");
    register("de", "deprovision");
    env.ok(&["alerter", "up", "de"]);
    bounded(&["alerter", "down", "de", "--force"], "deprovision");
    register("pp", "prepare-pipeline-deployment");
    env.ok(&[
        "stack", "register", "s", "-o", "default", "-a", "default", "-l", "pp", "--set",
    ]);
    let file = env.path("p.yaml");
    std::fs::write(&file, "name: p\nsteps:\n  - name: a\n").unwrap();
    env.ok(&["stack", "up"]);
    bounded(&["pipeline", "run", &file], "prepare-pipeline-deployment");
    // strata keeps serving, and each failure is recorded on its component.
    assert!(env.ok(&["stack", "list"]).contains("default"));
    let d = env.json(&["alerter", "describe", "su", "--no-status"]);
    assert_eq!(d["last_error"]["call"], "suspend", "{d}");
    assert_eq!(d["phase"], "running", "{d}");
}
