//! The sandbox holes an audit found, one class each (issue 13), and what the attack gets
//! now: a flavor's defaults never grant a directory or name a secret; a grant is never
//! opened through a symlink; secrets a flavor hands back are masked wherever strata shows
//! or keeps them; answers are bounded by their element counts, not only their bytes; a
//! call holds a bounded number of descriptors; an orchestrator's schedule is checked
//! against the pipeline. Each test also checks that normal commands keep working.

use std::path::{Path, PathBuf};

use crate::support::{Env, wasm};

/// Every file under `dir`, for a search of bytes that must not be there.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Bytes used by the files of the home's database.
fn db_bytes(env: &Env) -> u64 {
    files_under(&env.home().join("db"))
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// A pipeline file of two steps, `train` after `load`.
fn two_steps(env: &Env) -> String {
    let pipeline = env.path("p.yaml");
    std::fs::write(
        &pipeline,
        "name: training\nsteps:\n  - name: load\n  - name: train\n    upstream: [load]\n",
    )
    .unwrap();
    pipeline
}

#[test]
fn a_flavor_default_never_grants_a_directory_or_names_a_secret() {
    let env = Env::new();
    let err = env.refused(&["alerter", "flavor", "register", &wasm("fixture_grabby")]);
    assert!(
        err.contains("the default of field `root` (`/`) is a local directory"),
        "{err}"
    );
    assert!(
        err.contains("the default of field `token` is set, and a secret field may have none"),
        "{err}"
    );
    assert!(
        err.contains("the default of field `motd` (`{{some_secret.key}}`) names a secret"),
        "{err}"
    );
    // `flavor test` registers first, in its own throwaway home: refused the same way.
    let r = env.run(&["flavor", "test", &wasm("fixture_grabby")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        (r.stdout.clone() + &r.stderr).contains("is a local directory"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(!env.ok(&["flavor", "list"]).contains("grabby"));
}

#[test]
fn every_grant_goes_through_the_same_checks_however_it_is_given() {
    let env = Env::new();
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_escape")]);
    let register = |path: &str| {
        env.refused(&[
            "alerter",
            "register",
            "c",
            "--flavor=escape",
            &format!("--path={path}"),
        ])
    };
    // A secret reference would hide the grant from `describe` (its value could be `/`).
    env.ok(&["secret", "create", "s", "--k=/"]);
    let err = register("{{s.k}}");
    assert!(
        err.contains("takes a directory, not a secret reference"),
        "{err}"
    );
    let home = std::fs::canonicalize(env.home()).unwrap();
    let home = home.display().to_string();
    for (path, says) in [
        ("/".to_string(), "whole file system"),
        (home.clone(), "holds strata's home"),
        (
            Path::new(&home).parent().unwrap().display().to_string(),
            "holds strata's home",
        ),
        (format!("{home}/db"), "inside strata's home"),
        (format!("{home}/stores"), "inside strata's home"),
        (
            format!("{home}/stores/x/../../secret.key"),
            "inside strata's home",
        ),
    ] {
        let err = register(&path);
        assert!(err.contains(says), "{path}: {err}");
    }
    // A symlink the user gives is resolved once, here, and judged by what it points at.
    let link = env.path("to-root");
    std::os::unix::fs::symlink("/", &link).unwrap();
    assert!(register(&link).contains("whole file system"));
    // Through an import file too: the same checks as on the command line.
    let fine = env.path("fine");
    env.ok(&[
        "alerter",
        "register",
        "a",
        "--flavor=escape",
        &format!("--path={fine}"),
    ]);
    env.ok(&[
        "stack", "register", "s", "-o", "default", "-a", "default", "-al", "a",
    ]);
    let file = env.path("s.yaml");
    env.ok(&["stack", "export", "s", &file]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&fine), "{text}");
    std::fs::write(&file, text.replace(&fine, &home)).unwrap();
    env.ok(&["stack", "delete", "s"]);
    env.ok(&["alerter", "delete", "a"]);
    let err = env.refused(&["stack", "import", &file]);
    assert!(err.contains("holds strata's home"), "{err}");
    // A data directory under the home's `stores/` is strata's to give.
    let ok = format!("{home}/stores/mine");
    env.ok(&[
        "alerter",
        "register",
        "c",
        "--flavor=escape",
        &format!("--path={ok}"),
    ]);
    env.ok(&["alerter", "up", "c"]);
    assert!(Path::new(&ok).join("inside.txt").exists());
}

#[test]
fn a_grant_the_flavor_turned_into_a_symlink_is_never_followed() {
    let env = Env::new();
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_symlinker")]);
    let root = env.path("d");
    let cache = format!("{root}/cache");
    std::fs::create_dir_all(&cache).unwrap();
    env.ok(&[
        "alerter",
        "register",
        "c",
        "--flavor=symlinker",
        &format!("--root={root}"),
        &format!("--cache={cache}"),
    ]);
    // `provision` plants the link through `root`; the next call (`resume`) is refused.
    let err = env.fail(&["alerter", "up", "c"]);
    assert!(
        std::fs::symlink_metadata(&cache).unwrap().is_symlink(),
        "the fixture did not plant its link"
    );
    assert!(
        err.contains("alerter `c`: the directory of field `cache`") && err.contains("is a symlink"),
        "{err}"
    );
    assert!(
        err.contains("hint: a symlink where a granted directory"),
        "{err}"
    );
    // Every later call is refused the same way; the flavor never lists `/`.
    let d = env.json(&["alerter", "describe", "c"]);
    assert!(!d.to_string().contains("escaped"), "{d}");
    assert!(d["status"].to_string().contains("is a symlink"), "{d}");
    // Once the user removes the link, the component works again.
    std::fs::remove_file(&cache).unwrap();
    std::fs::create_dir(&cache).unwrap();
    let d = env.json(&["alerter", "describe", "c"]);
    assert!(d["status"].to_string().contains("contained"), "{d}");
    assert!(env.ok(&["stack", "list"]).contains("default"));
}

#[test]
fn secrets_a_flavor_hands_back_are_masked_everywhere() {
    let env = Env::new();
    let canary = "canary-5f1e9a77";
    env.ok(&["secret", "create", "s", &format!("--token={canary}")]);
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_echo")]);
    env.ok(&[
        "alerter",
        "register",
        "c",
        "--flavor=echo",
        "--token={{s.token}}",
    ]);
    let mut seen = Vec::new();
    // `provision` fails with the token in its error, logging it too.
    let r = env.run(&["alerter", "up", "c", "--verbose"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("the server refused token ********"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("the token is ********"), "{}", r.stderr);
    seen.push(r.stderr + &r.stdout);
    // The status detail, in a table, in JSON, in YAML.
    for args in [
        vec!["alerter", "describe", "c"],
        vec!["alerter", "describe", "c", "--output", "json"],
        vec!["alerter", "describe", "c", "--output", "yaml"],
        vec!["stack", "describe"],
    ] {
        let r = env.run(&args);
        seen.push(r.stdout + &r.stderr);
    }
    let d = env.json(&["alerter", "describe", "c"]);
    assert_eq!(
        d["last_error"]["message"], "the server refused token ********",
        "{d}"
    );
    assert!(
        d["status"]
            .to_string()
            .contains("connected with token ********"),
        "{d}"
    );
    // A panic message (standard error) is masked too.
    env.ok(&["alerter", "update", "c", "--note=succeed"]);
    let r = env.run(&["alerter", "up", "c"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot resume with token ********"),
        "{}",
        r.stderr
    );
    seen.push(r.stderr + &r.stdout);
    for text in &seen {
        assert!(!text.contains(canary), "the secret leaked:\n{text}");
    }
    // Nothing on disk holds it in clear: the database, the daemon's log and journal.
    for file in files_under(env.home()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains(&bytes, canary.as_bytes()),
            "{} holds the secret in clear",
            file.display()
        );
    }
    // The user can still read it, on purpose.
    assert!(env.ok(&["secret", "get", "s", "--reveal"]).contains(canary));
}

#[test]
fn answers_are_bounded_by_their_element_counts_not_only_their_bytes() {
    let env = Env::new();
    let before = db_bytes(&env);
    for _ in 0..3 {
        let err = env.refused(&["alerter", "flavor", "register", &wasm("fixture_flood")]);
        assert!(
            err.contains("flavor `")
                && err.contains("failed during `describe`: it returned 5000000 supported schemes, more than the 16 strata accepts"),
            "{err}"
        );
    }
    let grown = db_bytes(&env).saturating_sub(before);
    assert!(grown < 4 << 20, "the database grew by {grown} bytes");
    // Registering and deleting a flavor gives its space back: the store does not creep.
    let before = db_bytes(&env);
    for _ in 0..10 {
        env.ok(&["alerter", "flavor", "register", &wasm("fixture_alerter")]);
        env.ok(&["alerter", "flavor", "delete", "alerter"]);
    }
    let grown = db_bytes(&env).saturating_sub(before);
    assert!(
        grown < 4 << 20,
        "10 registrations and deletions grew the database by {grown} bytes"
    );

    env.ok(&[
        "orchestrator",
        "flavor",
        "register",
        &wasm("fixture_floodorch"),
    ]);
    let err = env.refused(&[
        "orchestrator",
        "register",
        "o",
        "--flavor=floodorch",
        "--mode=errors",
    ]);
    assert!(
        err.contains("it returned 2000000 validation errors, more than the 256 strata accepts"),
        "{err}"
    );
    env.ok(&[
        "orchestrator",
        "register",
        "o",
        "--flavor=floodorch",
        "--mode=detail",
    ]);
    let d = env.json(&["orchestrator", "describe", "o"]);
    assert!(
        d["status"]
            .to_string()
            .contains("bytes strata accepts from one call"),
        "{d}"
    );
    // A schedule longer than the pipeline is refused from its length.
    env.ok(&[
        "stack", "register", "s", "-o", "o", "-a", "default", "--set",
    ]);
    let pipeline = two_steps(&env);
    for (mode, says) in [
        ("waves", "it returned 3000000 waves"),
        ("entries", "it returned 3000000 scheduled steps"),
    ] {
        env.ok(&["orchestrator", "update", "o", &format!("--mode={mode}")]);
        env.ok(&["stack", "up"]);
        let err = env.fail(&["pipeline", "run", &pipeline]);
        assert!(err.contains(says), "{mode}: {err}");
    }
    assert!(env.ok(&["stack", "list"]).contains("default"));
}

#[test]
fn a_schedule_that_lies_about_the_pipeline_is_refused() {
    let env = Env::new();
    env.ok(&[
        "orchestrator",
        "flavor",
        "register",
        &wasm("fixture_floodorch"),
    ]);
    env.ok(&["orchestrator", "register", "o", "--flavor=floodorch"]);
    env.ok(&[
        "stack", "register", "s", "-o", "o", "-a", "default", "--set",
    ]);
    env.ok(&["stack", "up"]);
    let pipeline = two_steps(&env);
    let run = env.json(&["pipeline", "run", &pipeline]);
    assert_eq!(
        run["launch"]["schedule"],
        serde_json::json!([["load"], ["train"]])
    );
    for (mode, says) in [
        (
            "unknown",
            "it names step `ghost`, which the pipeline does not have",
        ),
        (
            "order",
            "it runs step `train` in wave 1 but its upstream step `load` in wave 2",
        ),
        ("twice", "it schedules step `load` twice"),
        ("missing", "it leaves out step `train`"),
    ] {
        env.ok(&["orchestrator", "update", "o", &format!("--mode={mode}")]);
        let err = env.fail(&["pipeline", "run", &pipeline]);
        assert!(
            err.contains("orchestrator `o` (flavor `floodorch`): `launch` failed: it reported a schedule strata cannot follow")
                && err.contains(says),
            "{mode}: {err}"
        );
    }
}

/// Open descriptors of process `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_call_holds_a_bounded_number_of_descriptors() {
    let env = Env::new();
    let before = env.daemon_pid().map(fds);
    env.ok(&["alerter", "flavor", "register", &wasm("fixture_fdhog")]);
    env.ok(&[
        "alerter",
        "register",
        "c",
        "--flavor=fdhog",
        &format!("--path={}", env.path("files")),
    ]);
    let err = env.fail(&["alerter", "up", "c"]);
    assert!(
        err.contains(
            "flavor `fdhog` failed during `provision`: it held more than 256 open handles"
        ),
        "{err}"
    );
    assert!(env.ok(&["stack", "list"]).contains("default"));
    // Every descriptor of the call was closed with it.
    if let (Some(before), Some(pid)) = (before, env.daemon_pid()) {
        let after = fds(pid);
        assert!(
            after <= before + 8,
            "{before} descriptors before, {after} after"
        );
    }
}

#[test]
fn a_wasm_file_over_the_size_cap_is_refused_before_it_is_compiled() {
    let env = Env::new();
    let file = env.path("huge.wasm");
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.resize((64 << 20) + 1, 0);
    std::fs::write(&file, bytes).unwrap();
    let err = env.refused(&["alerter", "flavor", "register", &file]);
    assert!(err.contains("strata accepts at most 64 MiB"), "{err}");
}
