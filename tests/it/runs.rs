//! Pipelines that run: steps execute in the orchestrator's order, artifacts go through
//! the artifact store, the cache skips what is unchanged, a failure stops what depends on
//! it, and every run is recorded — also one strata was killed in the middle of.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Env;

/// The pipeline of these tests: `load` writes rows, `train` counts them, `report` joins
/// what it got with its own context. `load.sh` is a file of the pipeline's directory,
/// named in the command by `{{pipeline.dir}}`, so editing it invalidates `load`'s cache.
const PIPELINE: &str = r#"name: training
steps:
  - name: load
    run: sh {{pipeline.dir}}/load.sh {{param.rows}}
    outputs: [data.csv]
  - name: train
    run: wc -l < data.csv | tr -d ' ' > model.txt && echo "seed=$SEED" >> model.txt && echo trained on $(cat data.csv | wc -l) rows
    inputs: [load.data.csv]
    outputs: [model.txt]
    env: {SEED: "42"}
  - name: report
    run: cat model.txt > report.txt && echo "$STRATA_PIPELINE $STRATA_STEP rows=$STRATA_PARAM_ROWS" >> report.txt
    inputs: [train.model.txt]
    outputs: [report.txt]
"#;

const LOAD: &str = "i=0; while [ $i -lt \"$1\" ]; do i=$((i+1)); echo \"$i,$((i*2))\"; done > data.csv\necho loaded $1 rows\n";

fn setup(env: &Env) -> String {
    std::fs::write(env.path("pipeline.yaml"), PIPELINE).unwrap();
    std::fs::write(env.path("load.sh"), LOAD).unwrap();
    env.ok(&["stack", "up"]);
    env.path("pipeline.yaml")
}

fn statuses(run: &serde_json::Value) -> Vec<(String, String)> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn a_pipeline_runs_its_steps_passes_artifacts_through_the_store_and_caches_them() {
    let env = Env::new();
    let file = setup(&env);
    let first = env.json(&["pipeline", "run", &file, "--param", "rows=5"]);
    assert_eq!(first["status"], "completed", "{first}");
    assert_eq!(
        statuses(&first),
        pairs(&[
            ("load", "completed"),
            ("train", "completed"),
            ("report", "completed")
        ])
    );
    let id = first["run_id"].as_str().unwrap().to_string();
    // The artifacts are files of the default store, under runs/PIPELINE/RUN/STEP/.
    let report = &first["steps"][2]["outputs"][0];
    assert_eq!(
        report["key"],
        format!("runs/training/{id}/report/report.txt")
    );
    let text = std::fs::read_to_string(report["uri"].as_str().unwrap()).unwrap();
    assert_eq!(text, "5\nseed=42\ntraining report rows=5\n");
    // The input the next step read is the output the previous one wrote, by content.
    assert_eq!(
        first["steps"][1]["inputs"][0]["sha256"],
        first["steps"][0]["outputs"][0]["sha256"]
    );
    let got = env.ok(&[
        "artifact-store",
        "get",
        "default",
        &format!("runs/training/{id}/load/data.csv"),
    ]);
    assert!(
        got.starts_with("1,2\n2,4\n") && got.ends_with("5,10\n"),
        "{got}"
    );
    let logs = env.ok(&["pipeline", "runs", "logs", &id, "load"]);
    assert_eq!(logs, "loaded 5 rows\n");
    let all = env.ok(&["pipeline", "runs", "logs", &id[..8]]);
    assert!(all.contains("==> train <==\ntrained on 5 rows"), "{all}");

    // Again: nothing changed, every step comes from the cache, outputs and all.
    let second = env.json(&["pipeline", "run", &file, "--param", "rows=5"]);
    assert_eq!(
        statuses(&second),
        pairs(&[
            ("load", "cached"),
            ("train", "cached"),
            ("report", "cached")
        ])
    );
    assert_eq!(second["steps"][2]["cached_from"], id.as_str());
    assert_eq!(second["steps"][2]["outputs"], first["steps"][2]["outputs"]);

    // The script changed but writes the same rows: `load` runs, `train` does not.
    std::fs::write(env.path("load.sh"), format!("# tidied\n{LOAD}")).unwrap();
    let third = env.json(&["pipeline", "run", &file, "--param", "rows=5"]);
    assert_eq!(
        statuses(&third),
        pairs(&[
            ("load", "completed"),
            ("train", "cached"),
            ("report", "cached")
        ])
    );
    // Another parameter: everything downstream of what changed runs.
    let fourth = env.json(&["pipeline", "run", &file, "--param", "rows=7"]);
    assert_eq!(
        statuses(&fourth),
        pairs(&[
            ("load", "completed"),
            ("train", "completed"),
            ("report", "completed")
        ])
    );
    let forced = env.json(&["pipeline", "run", &file, "--param", "rows=7", "--no-cache"]);
    assert_eq!(
        statuses(&forced),
        pairs(&[
            ("load", "completed"),
            ("train", "completed"),
            ("report", "completed")
        ])
    );

    let runs = env.json(&["pipeline", "runs", "list", "--pipeline", "training"]);
    assert_eq!(runs.as_array().unwrap().len(), 5, "{runs}");
    assert_eq!(runs[0]["run_id"], forced["run_id"], "newest first: {runs}");
    let table = env.ok(&["pipeline", "runs", "describe", &id]);
    for word in ["completed", "load", "data.csv", "report.txt", "WAVE"] {
        assert!(table.contains(word), "{word}: {table}");
    }

    // Deleting the first run keeps what the second reuses from it (the cache), and
    // drops its cache entries, so the next run runs again.
    let uri = report["uri"].as_str().unwrap().to_string();
    env.ok(&["pipeline", "runs", "delete", &id]);
    assert!(std::path::Path::new(&uri).exists(), "a later run reuses it");
    env.fail(&["pipeline", "runs", "describe", &id]);
    env.ok(&[
        "pipeline",
        "runs",
        "delete",
        second["run_id"].as_str().unwrap(),
    ]);
    env.ok(&[
        "pipeline",
        "runs",
        "delete",
        third["run_id"].as_str().unwrap(),
    ]);
    assert!(
        !std::path::Path::new(&uri).exists(),
        "no run uses it any more"
    );
    let again = env.json(&["pipeline", "run", &file, "--param", "rows=5"]);
    assert_eq!(again["steps"][2]["status"], "completed", "{again}");
}

#[test]
fn a_failing_step_stops_what_depends_on_it_and_lets_the_rest_finish() {
    let env = Env::new();
    std::fs::write(
        env.path("p.yaml"),
        r#"name: flaky
steps:
  - name: a
    run: echo about to fail; echo oops >&2; exit 3
  - name: b
    run: echo never
    upstream: [a]
  - name: c
    run: sleep 0.3; echo done > c.txt
    outputs: [c.txt]
"#,
    )
    .unwrap();
    env.ok(&["stack", "up"]);
    let r = env.run(&["pipeline", "run", "p.yaml", "--output", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("step `a` failed: its command exited with code 3"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("strata pipeline runs logs"),
        "{}",
        r.stderr
    );
    let run: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(run["status"], "failed");
    assert_eq!(
        statuses(&run),
        pairs(&[("a", "failed"), ("b", "skipped"), ("c", "completed")])
    );
    assert_eq!(run["steps"][0]["exit_code"], 3);
    assert_eq!(run["steps"][1]["error"], "upstream step `a` failed");
    let id = run["run_id"].as_str().unwrap();
    assert_eq!(
        env.ok(&["pipeline", "runs", "logs", id, "a"]),
        "about to fail\noops\n"
    );

    // A timeout stops the step (and what it started) and fails it.
    std::fs::write(
        env.path("slow.yaml"),
        "name: slow\nsteps:\n  - name: wait\n    run: sleep 30 & sleep 30\n    timeout: 300ms\n",
    )
    .unwrap();
    let started = Instant::now();
    let err = env.fail(&["pipeline", "run", "slow.yaml"]);
    assert!(err.contains("ran past its timeout (300ms)"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));

    // A process that leaves the step's group keeps its output pipe open: the step still
    // ends when its command does (strata stops waiting for the output after 2 s).
    std::fs::write(
        env.path("escape.yaml"),
        "name: escape\nsteps:\n  - name: leave\n    run: setsid sleep 8 & echo left\n",
    )
    .unwrap();
    let started = Instant::now();
    let run = env.json(&["pipeline", "run", "escape.yaml"]);
    assert_eq!(run["status"], "completed", "{run}");
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn pipeline_files_with_mistakes_get_one_clear_error_each_and_record_nothing() {
    let env = Env::new();
    let cases: [(&str, &str); 11] = [
        (
            "steps:\n  - name: a\n    run: true\n    colour: red\n",
            "unknown field `colour`",
        ),
        (
            "steps:\n  - name: a\n    run: true\n    upstream: [b]\n  - name: b\n    run: true\n    upstream: [a]\n",
            "cycle: a → b → a",
        ),
        (
            "steps:\n  - name: a\n    run: true\n    upstream: [z]\n",
            "upstream step `z`",
        ),
        (
            "steps:\n  - name: a\n    run: true\n    outputs: [m, m/x]\n",
            "outputs `m` and `m/x` collide",
        ),
        (
            "steps:\n  - name: a\n    run: true\n    outputs: [m, m]\n",
            "declares output `m` twice",
        ),
        (
            "steps:\n  - name: a\n    run: true\n  - name: b\n    run: true\n    inputs: [a.data.csv]\n",
            "step `a` has no output `data.csv`",
        ),
        (
            "steps:\n  - name: a\n    run: echo {{param.rows}}\n",
            "no parameter `rows`",
        ),
        (
            "steps:\n  - name: a\n    run: true\n    timeout: soon\n",
            "timeout `soon`",
        ),
        (
            "steps:\n  - name: a\n    run: true\n    timeout: 18446744073709551615s\n",
            "longer than 30 days",
        ),
        (
            "steps:\n  - name: a\n    run: true\n    outputs: [data.csv, data_csv]\n",
            "would both be `$STRATA_OUTPUT_DATA_CSV`",
        ),
        (
            "steps:\n  - name: a\n    outputs: [x]\n",
            "no `run` command",
        ),
    ];
    for (steps, want) in cases {
        std::fs::write(env.path("bad.yaml"), format!("name: bad\n{steps}")).unwrap();
        let err = env.fail(&["pipeline", "run", "bad.yaml"]);
        assert!(err.contains(want), "{want}: {err}");
        assert!(err.contains("hint:"), "{err}");
    }
    assert_eq!(
        env.json(&["pipeline", "runs", "list"]),
        serde_json::json!([])
    );
    let err = env.fail(&["pipeline", "runs", "describe", "nope"]);
    assert!(err.contains("run `nope`"), "{err}");
}

/// Starts `strata pipeline run` of a pipeline whose one step writes its shell's pid to
/// `pid` and sleeps; returns the child once the step runs, and the step's pid.
fn start_sleeping_run(env: &Env) -> (std::process::Child, i32) {
    std::fs::write(
        env.path("sleepy.yaml"),
        "name: sleepy\nsteps:\n  - name: nap\n    run: echo $$ > \"$STRATA_PIPELINE_DIR/pid\"; exec sleep 60\n  - name: after\n    run: echo never\n    upstream: [nap]\n",
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["pipeline", "run", "sleepy.yaml"])
        .env("STRATA_HOME", env.home())
        .env("NO_COLOR", "1")
        .current_dir(env.work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pid) = std::fs::read_to_string(env.path("pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            return (child, pid);
        }
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The newest run, as `runs describe` shows it, after checking `runs list` gives it
/// `status`.
fn newest_run(env: &Env, status: &str) -> serde_json::Value {
    let runs = env.json(&["pipeline", "runs", "list"]);
    assert_eq!(runs[0]["status"], status, "{runs}");
    env.json(&[
        "pipeline",
        "runs",
        "describe",
        runs[0]["run_id"].as_str().unwrap(),
    ])
}

fn gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        // SAFETY: signal 0 only asks whether the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            return true;
        }
        // A zombie (not reaped yet) counts as gone.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.contains(") Z") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_run_killed_with_sigkill_shows_as_interrupted_and_its_step_dies_with_it() {
    let env = Env::embedded();
    env.ok(&["stack", "up"]);
    let (mut child, step) = start_sleeping_run(&env);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(gone(step), "the step's process outlived strata");
    let run = newest_run(&env, "interrupted");
    assert_eq!(
        statuses(&run),
        pairs(&[("nap", "interrupted"), ("after", "interrupted")])
    );
    assert!(
        run["error"].as_str().unwrap().contains("strata ended"),
        "{run}"
    );
}

#[test]
fn ctrl_c_cancels_a_run_stops_its_steps_and_records_it() {
    let env = Env::embedded();
    env.ok(&["stack", "up"]);
    let (mut child, step) = start_sleeping_run(&env);
    // SAFETY: SIGINT to the strata this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cancelled with Ctrl-C"), "{stderr}");
    assert!(gone(step), "the step still runs");
    let run = newest_run(&env, "cancelled");
    assert_eq!(
        statuses(&run),
        pairs(&[("nap", "cancelled"), ("after", "skipped")])
    );
}

#[test]
fn through_the_daemon_a_run_is_followed_live_and_cancelled_by_id() {
    let env = Env::embedded().with_daemon();
    let file = setup(&env);
    let r = env.run(&["pipeline", "run", &file, "--param", "rows=3", "--verbose"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("[load] loaded 3 rows"), "{}", r.stderr);
    assert!(r.stderr.contains("step report: ok"), "{}", r.stderr);

    let (child, step) = start_sleeping_run(&env);
    let runs = env.json(&["pipeline", "runs", "list", "--pipeline", "sleepy"]);
    assert_eq!(runs[0]["status"], "running", "{runs}");
    let id = runs[0]["run_id"].as_str().unwrap();
    env.ok(&["pipeline", "cancel", id]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cancelled through the API"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(gone(step));
    let run = env.json(&["pipeline", "runs", "describe", id]);
    assert_eq!(run["status"], "cancelled");
    let err = env.fail(&["pipeline", "cancel", id]);
    assert!(err.contains("not under way"), "{err}");
}

#[test]
fn a_tracker_cannot_change_what_a_step_runs_or_where_its_data_goes() {
    let env = Env::new();
    let sink = crate::net::Sink::start(None);
    env.ok(&[
        "experiment-tracker",
        "flavor",
        "register",
        &crate::support::wasm("fixture_trackerenv"),
    ]);
    env.ok(&[
        "experiment-tracker",
        "register",
        "t",
        "--flavor=trackerenv",
        &format!("--url={}", sink.url("/")),
        "--timeout-ms",
        "1000",
    ]);
    env.ok(&[
        "stack", "register", "tr", "-o", "default", "-a", "default", "-e", "t", "--set",
    ]);
    env.ok(&["stack", "up"]);
    std::fs::write(
        env.path("p.yaml"),
        "name: p\nsteps:\n  - name: show\n    run: echo \"$TRACKERENV_RUN_ID $TRACKERENV_URL\" > seen.txt\n    outputs: [seen.txt]\n",
    )
    .unwrap();
    // Each of these would change what runs, or send a step's data where the user did
    // not say: the run is refused before its first step.
    for bad in [
        "LD_PRELOAD=/tmp/evil.so",
        "PATH=/tmp/evil",
        "BASH_ENV=/tmp/evil.sh",
        "PYTHONSTARTUP=/tmp/evil.py",
        "MLFLOW_TRACKING_URI=http://127.0.0.1:1/",
        "TRACKERENV_URL=http://10.9.8.7/",
        "TRACKERENV_URL=https://example.com/x",
        "TRACKERENV=1",
        "TRACKERENV_COMMAND=rm -rf ~",
        "TRACKERENV_URL=/home/me/.ssh",
        "STRATA_OUTPUT_SEEN_TXT=/home/me/.bashrc",
    ] {
        env.ok(&[
            "experiment-tracker",
            "update",
            "t",
            &format!("--vars={bad}"),
        ]);
        let err = env.fail(&["pipeline", "run", "p.yaml"]);
        assert!(
            err.contains("strata refuses") && err.contains("step-environment"),
            "{bad}: {err}"
        );
        let runs = env.json(&["pipeline", "runs", "list"]);
        assert_eq!(runs[0]["status"], "failed", "{bad}: {runs}");
        let run = env.json(&[
            "pipeline",
            "runs",
            "describe",
            runs[0]["run_id"].as_str().unwrap(),
        ]);
        assert_eq!(run["steps"][0]["status"], "skipped", "{bad}: {run}");
    }
    // Where the run is, under its own word, and a URL to the origin it is granted, reach
    // the step.
    let granted = sink.url("/runs/1");
    env.ok(&[
        "experiment-tracker",
        "update",
        "t",
        &format!("--vars=TRACKERENV_RUN_ID=yes;TRACKERENV_URL={granted}"),
    ]);
    let run = env.json(&["pipeline", "run", "p.yaml"]);
    let seen =
        std::fs::read_to_string(run["steps"][0]["outputs"][0]["uri"].as_str().unwrap()).unwrap();
    assert_eq!(seen, format!("yes {granted}\n"));
    assert_eq!(
        run["notices"][0],
        format!(
            "experiment tracker `t`: closed run {} as completed",
            run["run_id"].as_str().unwrap()
        )
    );
    // A finish-run that fails, traps or loops is a notice; the run stays completed.
    for (finish, want) in [
        ("error", "could not close run"),
        ("trap", "trap"),
        ("loop", ""),
    ] {
        env.ok(&[
            "experiment-tracker",
            "update",
            "t",
            &format!("--finish={finish}"),
        ]);
        let run = env.json(&["pipeline", "run", "p.yaml", "--no-cache"]);
        assert_eq!(run["status"], "completed", "{finish}: {run}");
        let notice = run["notices"][0].as_str().unwrap();
        assert!(
            notice.contains("could not close its run") && notice.contains(want),
            "{finish}: {notice}"
        );
    }
}
