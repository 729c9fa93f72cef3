//! Crash consistency: strata killed with SIGKILL at random points never loses a change
//! it reported as done, the store always opens again, every phase is a documented one,
//! and `up` converges afterwards. Also `backup` / `restore`.
//!
//! The number of kill points is `STRATA_KILL_POINTS` (200 here; `make soak` runs 1,000).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Env;

const PHASES: [&str; 7] = [
    "registered",
    "provisioning",
    "provisioned",
    "resuming",
    "running",
    "suspending",
    "deprovisioning",
];

/// What the test knows of one artifact store: `None` after a killed command on it, until
/// the next observation.
#[derive(Clone, Debug, PartialEq)]
struct Known {
    path: String,
    phase: Option<&'static str>,
}

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn observe(env: &Env) -> BTreeMap<String, (String, String)> {
    let list = env.json(&["artifact-store", "list"]);
    list.as_array()
        .expect("a list")
        .iter()
        .filter(|c| c["name"] != "default")
        .map(|c| {
            let path = c["config"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["key"] == "path")
                .map(|v| v["value"].as_str().unwrap().to_string())
                .unwrap_or_default();
            (
                c["name"].as_str().unwrap().to_string(),
                (path, c["phase"].as_str().unwrap().to_string()),
            )
        })
        .collect()
}

#[test]
fn sigkill_at_random_points_loses_no_acknowledged_change() {
    // Kills the process that holds the store: the CLI itself (the daemon's own crash
    // safety is `daemon::sigterm_*` and this same store code).
    let env = Env::embedded();
    let target: usize = std::env::var("STRATA_KILL_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}, {target} kill points");
    let mut rng = Rng(seed);
    env.ok(&["init"]);
    // name → what strata acknowledged (`Some`), or unknown since a kill (`None`).
    let mut model: BTreeMap<String, Option<Known>> = BTreeMap::new();
    let mut absent_known: std::collections::BTreeSet<String> =
        (0..6).map(|i| format!("s{i}")).collect();
    let (mut killed, mut finished, mut rounds) = (0usize, 0usize, 0usize);
    let started = Instant::now();
    while killed < target {
        rounds += 1;
        assert!(
            rounds < target * 20,
            "only {killed} kills in {rounds} rounds: commands finish before the kill"
        );
        let name = format!("s{}", rng.below(6));
        let path = env.path(&format!("{name}-{}", rng.below(3)));
        let args: Vec<String> = match rng.below(5) {
            0 => vec![
                "artifact-store".into(),
                "register".into(),
                name.clone(),
                "--flavor=local".into(),
                format!("--path={path}"),
            ],
            1 => vec![
                "artifact-store".into(),
                "update".into(),
                name.clone(),
                format!("--path={path}"),
            ],
            2 => vec!["artifact-store".into(), "up".into(), name.clone()],
            3 => vec![
                "artifact-store".into(),
                "down".into(),
                name.clone(),
                "--force".into(),
            ],
            _ => vec!["artifact-store".into(), "delete".into(), name.clone()],
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(&args)
            .env("STRATA_HOME", env.home())
            .env("NO_COLOR", "1")
            .current_dir(env.work.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("strata runs");
        std::thread::sleep(Duration::from_micros(rng.below(40_000)));
        let was_killed = match child.try_wait().expect("wait") {
            Some(_) => false,
            None => {
                let _ = child.kill();
                true
            }
        };
        let status = child.wait().expect("wait");
        if was_killed && status.code().is_none() {
            killed += 1;
            model.insert(name.clone(), None);
            absent_known.remove(&name);
        } else {
            finished += 1;
            if status.success() {
                let before = model.get(&name).cloned().flatten();
                let after = match args[1].as_str() {
                    "register" => Some(Known {
                        path: path.clone(),
                        phase: Some("registered"),
                    }),
                    "update" => before.map(|k| Known {
                        path: path.clone(),
                        ..k
                    }),
                    "up" => before.map(|k| Known {
                        phase: Some("running"),
                        ..k
                    }),
                    "down" => before.map(|k| Known {
                        phase: Some("registered"),
                        ..k
                    }),
                    _ => None,
                };
                if args[1] == "delete" {
                    model.remove(&name);
                    absent_known.insert(name.clone());
                } else if let Some(k) = after {
                    model.insert(name.clone(), Some(k));
                    absent_known.remove(&name);
                } else {
                    // Succeeded on a component whose state was unknown: observe it below.
                    model.insert(name.clone(), None);
                }
            }
        }
        // The store opens, every acknowledged change is there, every phase is documented.
        let seen = observe(&env);
        for (n, (p, phase)) in &seen {
            assert!(
                PHASES.contains(&phase.as_str()),
                "{n} is in undocumented phase `{phase}` (seed {seed})"
            );
            assert!(
                !absent_known.contains(n),
                "{n} was deleted (acknowledged) but is back (seed {seed})"
            );
            match model.get(n) {
                Some(Some(k)) => {
                    assert_eq!(&k.path, p, "{n} lost an acknowledged update (seed {seed})");
                    if let Some(expected) = k.phase {
                        assert_eq!(
                            expected, phase,
                            "{n} lost an acknowledged lifecycle change (seed {seed})"
                        );
                    }
                }
                _ => {
                    // Unknown since a kill: adopt what is stored, interrupted phases included.
                    let phase = PHASES.iter().find(|x| **x == phase.as_str()).copied();
                    let stable =
                        phase.filter(|p| matches!(*p, "registered" | "running" | "provisioned"));
                    model.insert(
                        n.clone(),
                        Some(Known {
                            path: p.clone(),
                            phase: stable,
                        }),
                    );
                }
            }
        }
        for (n, k) in &model {
            if k.is_some() {
                assert!(
                    seen.contains_key(n),
                    "{n} was registered (acknowledged) but is gone (seed {seed})"
                );
            }
        }
        model.retain(|n, _| seen.contains_key(n));
        for n in seen.keys() {
            absent_known.remove(n);
        }
    }
    eprintln!(
        "{killed} kill points, {finished} commands finished, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Every survivor converges: `up` brings it to running, `down --force` back.
    for n in observe(&env).keys() {
        env.ok(&["artifact-store", "up", n]);
        let d = env.json(&["artifact-store", "describe", n, "--no-status"]);
        assert_eq!(d["phase"], "running", "{n} did not converge: {d}");
        env.ok(&["artifact-store", "down", n, "--force"]);
    }
    env.ok(&["stack", "up"]);
}

#[test]
fn sigkill_during_flavor_register_and_delete_leaves_every_flavor_runnable() {
    // Flavor code is a file written before the transaction that names it and removed
    // after the one that drops it: a kill anywhere must leave every registered flavor
    // with its code, and nothing acknowledged lost.
    let env = Env::embedded();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("flavor crash test seed {seed}");
    let mut rng = Rng(seed);
    env.ok(&["init"]);
    let fixtures = [
        ("alerter", crate::support::wasm("fixture_alerter")),
        ("trap", crate::support::wasm("fixture_trap")),
        ("logspam", crate::support::wasm("fixture_logspam")),
    ];
    let (mut killed, mut rounds) = (0, 0);
    // name → registered (acknowledged), or unknown since a kill.
    let mut known: BTreeMap<&str, Option<bool>> = BTreeMap::new();
    while killed < 40 {
        rounds += 1;
        assert!(rounds < 800, "only {killed} kills in {rounds} rounds");
        let (name, file) = &fixtures[rng.below(3) as usize];
        let register = rng.below(2) == 0;
        let args: Vec<&str> = if register {
            vec!["alerter", "flavor", "register", file.as_str()]
        } else {
            vec!["alerter", "flavor", "delete", name]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(&args)
            .env("STRATA_HOME", env.home())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("strata runs");
        // Registration compiles for 100 ms or more: kills land before, during and after.
        std::thread::sleep(Duration::from_micros(rng.below(250_000)));
        let was_killed = child.try_wait().expect("wait").is_none();
        if was_killed {
            let _ = child.kill();
        }
        let status = child.wait().expect("wait");
        if was_killed && status.code().is_none() {
            killed += 1;
            known.insert(name, None);
        } else if status.success() {
            known.insert(name, Some(register));
        }
        // Every listed flavor has its code, and what was acknowledged holds.
        let list = env.json(&["alerter", "flavor", "list"]);
        let listed: Vec<(String, bool)> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["flavor"].as_str().unwrap().to_string(),
                    f["ready_to_use"].as_bool().unwrap(),
                )
            })
            .collect();
        for (n, ready) in &listed {
            assert!(
                ready,
                "flavor `{n}` is registered without its code (seed {seed})"
            );
        }
        for (n, state) in &known {
            let present = listed.iter().any(|(l, _)| l == n);
            if let Some(registered) = state {
                assert_eq!(
                    *registered,
                    present,
                    "flavor `{n}`: an acknowledged {} was lost (seed {seed})",
                    if *registered { "register" } else { "delete" }
                );
            }
        }
    }
    // Every flavor that survived runs from its stored code: with the compiled cache
    // gone, a component of it registers (`validate`), which compiles that code again.
    std::fs::remove_dir_all(env.home().join("cache")).unwrap();
    let list = env.json(&["alerter", "flavor", "list"]);
    for f in list.as_array().unwrap() {
        let n = f["flavor"].as_str().unwrap();
        let component = format!("c-{n}");
        let flavor = format!("--flavor={n}");
        let path = format!("--path={}", env.path(&component));
        let mut args = vec!["alerter", "register", &component, &flavor];
        if n == "alerter" {
            args.extend(["--channel=ops", &path]);
        }
        env.ok(&args);
    }
    // No half-written files are left once the store has been opened again.
    let leftovers: Vec<_> = std::fs::read_dir(env.home().join("db/wasm"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn backup_and_restore_move_the_whole_store_and_refuse_damage() {
    let a = Env::new();
    a.ok(&[
        "artifact-store",
        "register",
        "st",
        "--flavor=local",
        &format!("--path={}", a.path("st")),
    ]);
    a.ok(&["secret", "create", "k", "--token=canary-backup-3b1"]);
    a.ok(&[
        "stack", "register", "p", "-o", "default", "-a", "st", "--set",
    ]);
    a.ok(&["stack", "up"]);
    let file = a.path("backup.json");
    a.ok(&["backup", &file]);
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("canary-backup-3b1"),
        "a secret is in clear in the backup"
    );
    let err = a.refused(&["backup", &file]);
    assert!(err.contains("already exists"), "{err}");

    // Restore into a fresh home: the same stacks, components and phases.
    let b = Env::new();
    let r = b.run(&["restore", &file]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("sealed with another secret.key"),
        "{}",
        r.stderr
    );
    assert_eq!(b.ok(&["stack", "get"]).trim(), "p");
    assert_eq!(
        b.json(&["stack", "describe", "p"])["components"],
        a.json(&["stack", "describe", "p"])["components"]
    );
    b.ok(&["stack", "up"]);
    // Into a home with things of its own: refused unless --force, naming them.
    let err = b.refused(&["restore", &file]);
    assert!(
        err.contains("stack `p`") && err.contains("--force"),
        "{err}"
    );
    // A damaged file is refused before anything changes.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["records"][3]["value"] = serde_json::Value::String("00".into());
    let damaged = a.path("damaged.json");
    std::fs::write(&damaged, v.to_string()).unwrap();
    let err = b.refused(&["restore", &damaged, "--force"]);
    assert!(err.contains("checksum does not match"), "{err}");
    std::fs::write(&damaged, &text[..text.len() / 2]).unwrap();
    let err = b.refused(&["restore", &damaged, "--force"]);
    assert!(err.contains("is not a usable strata backup"), "{err}");
    // Restoring over the same home with --force puts back what the backup holds.
    a.ok(&["stack", "set", "default"]);
    a.ok(&["stack", "delete", "p"]);
    a.ok(&["restore", &file, "--force"]);
    assert_eq!(a.ok(&["stack", "get"]).trim(), "p");
    assert_eq!(
        a.json(&["secret", "get", "k", "--reveal"])["values"]["token"],
        "canary-backup-3b1"
    );
}
