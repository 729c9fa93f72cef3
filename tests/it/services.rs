//! The built-in integrations (`s3`, `mlflow`, `oci`, `webhook`) against the real servers
//! they are for, started on 127.0.0.1 ([`crate::servers`]): each flavor's lifecycle does
//! real work on the server, its other calls go through, and every bad input or bad
//! server (wrong secret, server down, refused name, a 500) is one line naming the
//! component, with its phase unchanged. The last test runs the README's "A stack of real
//! services" section, as written.

use crate::servers::{Hook, REGISTRY_USER, Registry, S3, http, mlflow};
use crate::support::Env;

/// `strata <t> describe NAME` as JSON.
fn describe(env: &Env, t: &str, name: &str) -> serde_json::Value {
    env.json(&[t, "describe", name])
}

fn phase(env: &Env, t: &str, name: &str) -> String {
    describe(env, t, name)["phase"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The detail of the flavor's live status, or its error.
fn status(env: &Env, t: &str, name: &str) -> String {
    let v = describe(env, t, name);
    v["status"]["Ok"]["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v["status"].to_string())
}

/// An error must be one line (the `error:` line, then the hint) naming `who`.
fn one_line_naming(err: &str, who: &str) {
    let first = err.lines().next().unwrap_or_default();
    assert!(first.contains(who), "the error does not name {who}: {err}");
}

fn aws_connector(env: &Env, name: &str, s3: &S3, secret: &str) {
    env.ok(&[
        "service-connector",
        "register",
        name,
        "--type",
        "aws",
        &format!("--endpoint={}", s3.endpoint()),
        "--access-key-id=AK",
        &format!("--secret-access-key={secret}"),
    ]);
}

#[test]
fn the_s3_store_creates_fills_and_removes_its_bucket_on_a_server_that_checks_signatures() {
    let env = Env::new();
    let s3 = S3::start();
    env.ok(&["integration", "install", "s3"]);
    aws_connector(&env, "minio", &s3, "SK");
    // A bucket name S3 refuses is refused at registration, naming the field.
    let err = env.refused(&[
        "artifact-store",
        "register",
        "bad",
        "--flavor=s3",
        "--bucket=No_Such..Name",
        "--connector=minio",
    ]);
    assert!(err.contains("bucket"), "{err}");
    env.ok(&[
        "artifact-store",
        "register",
        "st",
        "--flavor=s3",
        "--bucket=strata-test",
        "--create_bucket=true",
        "--multipart_threshold_mb=5",
        "--connector=minio",
    ]);
    let bucket_dir = s3.dir().join("strata-test");
    assert!(!bucket_dir.exists());
    env.ok(&["artifact-store", "up", "st"]);
    assert!(bucket_dir.is_dir(), "up created the bucket");
    assert_eq!(phase(&env, "artifact-store", "st"), "running");
    assert!(status(&env, "artifact-store", "st").contains("strata-test"));

    // Files through the flavor: a small one, and one of 20 MiB (multipart: the store's
    // threshold is set to 5 MiB).
    let small = env.path("small.txt");
    std::fs::write(&small, b"hello s3").unwrap();
    let big = env.path("big.bin");
    let data: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(&big, &data).unwrap();
    env.ok(&["artifact-store", "put", "st", &small, "notes/small.txt"]);
    env.ok(&["artifact-store", "put", "st", &big, "models/v1/big.bin"]);
    let again = env.fail(&["artifact-store", "put", "st", &small, "notes/small.txt"]);
    one_line_naming(&again, "`st`");
    env.ok(&[
        "artifact-store",
        "put",
        "st",
        &small,
        "notes/small.txt",
        "--overwrite",
    ]);
    let root = env.ok(&["artifact-store", "ls", "st"]);
    assert_eq!(root, "models/\nnotes/\n", "the marker is hidden: {root}");
    assert_eq!(
        env.ok(&["artifact-store", "ls", "st", "models/v1"]),
        "big.bin\n"
    );
    let st = env.json(&["artifact-store", "stat", "st", "models/v1/big.bin"]);
    assert_eq!(st["size"], 20 * 1024 * 1024);
    let back = env.path("back.bin");
    env.ok(&["artifact-store", "get", "st", "models/v1/big.bin", &back]);
    assert!(
        std::fs::read(&back).unwrap() == data,
        "the bytes come back as written"
    );
    assert_eq!(
        env.ok(&["artifact-store", "get", "st", "notes/small.txt"]),
        "hello s3"
    );

    // A wrong secret: the server refuses the signature; the call says so in one line,
    // never shows the secret, and the phase stays.
    env.ok(&[
        "service-connector",
        "update",
        "minio",
        "--secret-access-key=not-the-secret",
    ]);
    let err = env.fail(&["artifact-store", "get", "st", "notes/small.txt"]);
    one_line_naming(&err, "`st`");
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    assert!(!err.contains("not-the-secret"), "{err}");
    assert_eq!(phase(&env, "artifact-store", "st"), "running");
    env.ok(&[
        "service-connector",
        "update",
        "minio",
        "--secret-access-key=SK",
    ]);

    // `down --force` refuses to delete a bucket that still holds files…
    let err = env.fail(&["artifact-store", "down", "st", "--force"]);
    one_line_naming(&err, "`st`");
    assert!(err.contains("delete_bucket_contents"), "{err}");
    assert!(bucket_dir.is_dir());
    // …and deletes the bucket it created once it is empty.
    env.ok(&["artifact-store", "rm", "st", "models", "--recursive"]);
    env.ok(&["artifact-store", "rm", "st", "notes/small.txt"]);
    env.ok(&["artifact-store", "down", "st", "--force"]);
    assert!(!bucket_dir.exists(), "the bucket strata created is gone");
    assert_eq!(phase(&env, "artifact-store", "st"), "registered");
}

#[test]
fn the_s3_store_never_deletes_a_bucket_it_did_not_create_and_names_a_server_that_is_down() {
    let env = Env::new();
    let s3 = S3::start();
    env.ok(&["integration", "install", "s3"]);
    aws_connector(&env, "minio", &s3, "SK");
    // No bucket, and not allowed to create one: `up` fails, and says how to fix it.
    env.ok(&[
        "artifact-store",
        "register",
        "theirs",
        "--flavor=s3",
        "--bucket=shared-bucket",
        "--connector=minio",
    ]);
    let err = env.fail(&["artifact-store", "up", "theirs"]);
    one_line_naming(&err, "`theirs`");
    assert!(err.contains("create_bucket"), "{err}");
    assert_eq!(phase(&env, "artifact-store", "theirs"), "registered");
    // Made by someone else: adopted, used, and left in place by `down --force`.
    std::fs::create_dir(s3.dir().join("shared-bucket")).unwrap();
    env.ok(&["artifact-store", "up", "theirs"]);
    env.ok(&["artifact-store", "down", "theirs", "--force"]);
    assert!(s3.dir().join("shared-bucket").is_dir());
    // A server that is down: one line naming the component and the endpoint.
    env.ok(&["artifact-store", "up", "theirs"]);
    let endpoint = s3.endpoint();
    drop(s3);
    let err = env.fail(&["artifact-store", "down", "theirs", "--force"]);
    one_line_naming(&err, "`theirs`");
    assert!(err.contains(&endpoint), "{err}");
    assert_eq!(phase(&env, "artifact-store", "theirs"), "provisioned");
}

/// MLflow's own answer for `GET path`.
fn mlflow_get(path: &str) -> serde_json::Value {
    let (status, _, body) = http("GET", &format!("{}{path}", mlflow()), &[], b"");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    assert!(status == 200 || status == 404, "{status}: {v}");
    v
}

fn experiment(name: &str) -> serde_json::Value {
    mlflow_get(&format!(
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}"
    ))["experiment"]
        .clone()
}

#[test]
fn the_mlflow_tracker_creates_its_experiment_logs_each_run_and_deletes_only_what_it_made() {
    let env = Env::new();
    let url = mlflow();
    env.ok(&["integration", "install", "mlflow"]);
    // A name of this test's own: the server is shared by the whole test run.
    let name = format!(
        "strata-{}",
        env.home().file_name().unwrap().to_string_lossy()
    );
    env.ok(&[
        "experiment-tracker",
        "register",
        "tracker",
        "--flavor=mlflow",
        &format!("--tracking_uri={url}"),
        &format!("--experiment_name={name}"),
    ]);
    assert!(experiment(&name).is_null());
    env.ok(&[
        "stack", "register", "tracked", "-o", "default", "-a", "default", "-e", "tracker", "--set",
    ]);
    env.ok(&["stack", "up"]);
    let exp = experiment(&name);
    assert_eq!(exp["lifecycle_stage"], "active", "{exp}");
    assert!(status(&env, "experiment-tracker", "tracker").contains(&name));

    // A run: an MLflow run tagged with strata's run id, the parameters as params; its
    // steps are told where to log (the tracker's `step-environment`), and it is closed
    // with the run's status (`finish-run`).
    std::fs::write(
        env.path("p.yaml"),
        "name: training\nsteps:\n  - name: load\n    run: echo \"$MLFLOW_RUN_ID $MLFLOW_TRACKING_URI $MLFLOW_EXPERIMENT_NAME\" > seen.txt\n    outputs: [seen.txt]\n  - name: train\n    upstream: [load]\n",
    )
    .unwrap();
    let run = env.json(&["pipeline", "run", "p.yaml", "--param", "learning_rate=0.01"]);
    let run_id = run["run_id"].as_str().unwrap().to_string();
    let id = exp["experiment_id"].as_str().unwrap();
    let body = format!(
        "{{\"experiment_ids\":[\"{id}\"],\"filter\":\"tags.`strata.run_id` = '{run_id}'\"}}"
    );
    let (code, _, found) = http(
        "POST",
        &format!("{url}/api/2.0/mlflow/runs/search"),
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    let found: serde_json::Value = serde_json::from_slice(&found).unwrap();
    assert_eq!(code, 200, "{found}");
    let runs = found["runs"].as_array().expect("one run");
    assert_eq!(runs.len(), 1, "{found}");
    let params = runs[0]["data"]["params"].to_string();
    assert!(
        params.contains("learning_rate") && params.contains("0.01"),
        "{params}"
    );
    assert_eq!(runs[0]["info"]["status"], "FINISHED", "{found}");
    let mlflow_run = runs[0]["info"]["run_id"].as_str().unwrap();
    let seen =
        std::fs::read_to_string(run["steps"][0]["outputs"][0]["uri"].as_str().unwrap()).unwrap();
    assert_eq!(seen, format!("{mlflow_run} {url} {name}\n"));
    assert!(
        run["notices"][0]
            .as_str()
            .unwrap()
            .contains("marked FINISHED"),
        "{run}"
    );

    // A run that fails: the stack's alerter posts it, and the MLflow run is FAILED.
    let hook = crate::servers::Hook::start();
    env.ok(&["integration", "install", "webhook"]);
    env.ok(&[
        "alerter",
        "register",
        "ops",
        "--flavor=webhook",
        &format!("--webhook_url={}", hook.url("/hooks/ops")),
    ]);
    env.ok(&["stack", "update", "tracked", "-al", "ops"]);
    env.ok(&["stack", "up"]);
    std::fs::write(
        env.path("fail.yaml"),
        "name: training\nsteps:\n  - name: train\n    run: echo diverged >&2; exit 1\n",
    )
    .unwrap();
    let err = env.fail(&["pipeline", "run", "fail.yaml"]);
    assert!(err.contains("step `train` failed"), "{err}");
    let posts: Vec<_> = hook
        .received()
        .into_iter()
        .filter(|p| p.0.starts_with("post "))
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let sent = String::from_utf8_lossy(&posts[0].1).to_string();
    assert!(sent.contains("failed") && sent.contains("train"), "{sent}");
    let failed = env.json(&["pipeline", "runs", "list"]);
    let failed_id = failed[0]["run_id"].as_str().unwrap();
    let body = format!(
        "{{\"experiment_ids\":[\"{id}\"],\"filter\":\"tags.`strata.run_id` = '{failed_id}'\"}}"
    );
    let (_, _, found) = http(
        "POST",
        &format!("{url}/api/2.0/mlflow/runs/search"),
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    let found: serde_json::Value = serde_json::from_slice(&found).unwrap();
    assert_eq!(found["runs"][0]["info"]["status"], "FAILED", "{found}");

    // `down --force` deletes the experiment strata created.
    env.ok(&["stack", "down", "--force"]);
    assert_eq!(experiment(&name)["lifecycle_stage"], "deleted");

    // An experiment someone else made is adopted, and left alone by `down --force`.
    let theirs = format!("{name}-theirs");
    let (code, _, _) = http(
        "POST",
        &format!("{url}/api/2.0/mlflow/experiments/create"),
        &[("content-type", "application/json")],
        format!("{{\"name\":\"{theirs}\"}}").as_bytes(),
    );
    assert_eq!(code, 200);
    env.ok(&[
        "experiment-tracker",
        "update",
        "tracker",
        &format!("--experiment_name={theirs}"),
    ]);
    env.ok(&["stack", "up"]);
    env.ok(&["stack", "down", "--force"]);
    assert_eq!(experiment(&theirs)["lifecycle_stage"], "active");

    // A server that is not there: one line naming the component and the URL.
    let gone = format!("http://127.0.0.1:{}", crate::servers::closed_port());
    env.ok(&[
        "experiment-tracker",
        "update",
        "tracker",
        &format!("--tracking_uri={gone}"),
    ]);
    let err = env.fail(&["stack", "up"]);
    one_line_naming(&err, "`tracker`");
    assert!(err.contains(&gone), "{err}");
    assert_eq!(phase(&env, "experiment-tracker", "tracker"), "registered");
}

#[test]
fn the_oci_registry_reports_its_repositories_and_creates_nothing() {
    let env = Env::new();
    let registry = Registry::start();
    registry.push("team/trainer", "v1");
    registry.push("team/trainer", "v2");
    registry.push("other/server", "latest");
    env.ok(&["integration", "install", "oci"]);
    env.ok(&[
        "container-registry",
        "register",
        "images",
        "--flavor=oci",
        &format!("--uri={}", registry.url()),
        "--namespace=team",
    ]);
    env.ok(&["container-registry", "up", "images"]);
    assert_eq!(phase(&env, "container-registry", "images"), "running");
    let detail = status(&env, "container-registry", "images");
    assert!(detail.contains("team/trainer"), "{detail}");
    assert!(detail.contains("2 tags"), "{detail}");
    assert!(!detail.contains("other/server"), "{detail}");
    env.ok(&["container-registry", "down", "images", "--force"]);
    // Nothing was removed from the registry.
    let (code, _, tags) = http(
        "GET",
        &format!("{}/v2/team/trainer/tags/list", registry.url()),
        &[],
        b"",
    );
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&tags).contains("v2"));
    // A registry that is down: `up` fails in one line and the phase stays.
    let url = registry.url();
    drop(registry);
    let err = env.fail(&["container-registry", "up", "images"]);
    one_line_naming(&err, "`images`");
    assert!(err.contains(&url), "{err}");
    assert_eq!(phase(&env, "container-registry", "images"), "registered");
}

#[test]
fn the_oci_registry_takes_its_credentials_from_a_basic_connector_and_names_a_wrong_one() {
    let env = Env::new();
    let registry = Registry::with_password();
    registry.push("team/trainer", "v1");
    env.ok(&["integration", "install", "oci"]);
    let (user, password) = REGISTRY_USER;
    let connector = |name: &str, password: &str| {
        env.ok(&[
            "service-connector",
            "register",
            name,
            "--type",
            "basic",
            &format!("--endpoint={}/v2/", registry.url()),
            &format!("--username={user}"),
            &format!("--password={password}"),
        ]);
    };
    connector("wrong", "not-the-password");
    connector("right", password);

    // No credentials: `up` fails in one line naming the component, the 401, and how to
    // bind a connector; the phase stays.
    env.ok(&[
        "container-registry",
        "register",
        "images",
        "--flavor=oci",
        &format!("--uri={}", registry.url()),
        "--namespace=team",
    ]);
    let err = env.fail(&["container-registry", "up", "images"]);
    one_line_naming(&err, "`images`");
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("--connector"), "{err}");
    assert_eq!(phase(&env, "container-registry", "images"), "registered");

    // A wrong password: the same, naming the connector, never the password.
    env.ok(&[
        "container-registry",
        "update",
        "images",
        "--connector=wrong",
    ]);
    let err = env.fail(&["container-registry", "up", "images"]);
    one_line_naming(&err, "`images`");
    assert!(err.contains("`wrong`") && err.contains("401"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
    assert_eq!(phase(&env, "container-registry", "images"), "registered");
    let verify = env.fail(&["service-connector", "verify", "wrong"]);
    assert!(verify.contains("401"), "{verify}");

    // The right one: up, and the status lists what the registry holds.
    env.ok(&["service-connector", "verify", "right"]);
    // The registry's `/` answers anybody: a connector pointed there cannot be verified,
    // and verify says so rather than "the credentials work".
    env.ok(&[
        "service-connector",
        "update",
        "right",
        &format!("--endpoint={}", registry.url()),
    ]);
    let unsure = env.fail(&["service-connector", "verify", "right"]);
    assert!(
        unsure.contains("cannot tell") && unsure.contains("/v2/"),
        "{unsure}"
    );
    env.ok(&[
        "container-registry",
        "update",
        "images",
        "--connector=right",
    ]);
    env.ok(&["container-registry", "up", "images"]);
    assert_eq!(phase(&env, "container-registry", "images"), "running");
    let detail = status(&env, "container-registry", "images");
    assert!(detail.contains("team/trainer (1 tag)"), "{detail}");
    let shown = env.ok(&["container-registry", "describe", "images"]);
    assert!(!shown.contains(password), "{shown}");
    env.ok(&["container-registry", "down", "images", "--force"]);
}

#[test]
fn the_webhook_alerter_posts_slack_json_and_its_status_posts_nothing() {
    let env = Env::new();
    let hook = Hook::start();
    env.ok(&["integration", "install", "webhook"]);
    // The URL's path is the webhook's credential: kept in a secret, whose value's origin
    // is granted and whose value is never shown.
    env.ok(&[
        "secret",
        "create",
        "hook",
        &format!("--url={}", hook.url("/services/T0/B1/secret-part")),
    ]);
    env.ok(&[
        "alerter",
        "register",
        "team",
        "--flavor=webhook",
        "--webhook_url={{hook.url}}",
    ]);
    env.ok(&["alerter", "up", "team"]);
    assert!(status(&env, "alerter", "team").contains("answers"));
    assert!(
        hook.received()
            .iter()
            .all(|(line, _)| !line.starts_with("post")),
        "status posts nothing: {:?}",
        hook.received()
    );
    env.ok(&[
        "alerter",
        "post",
        "team",
        "training finished",
        "--param",
        "level=success",
        "--param",
        "title=Nightly",
    ]);
    let verbose = env.run(&["alerter", "describe", "team", "--verbose"]);
    assert!(verbose.stderr.contains("http HEAD"), "{}", verbose.stderr);
    assert!(
        !verbose.stderr.contains("secret-part") && !verbose.stdout.contains("secret-part"),
        "{}{}",
        verbose.stdout,
        verbose.stderr
    );
    // The gate logs a request as origin (port always shown) and path: a URL kept in a
    // secret without a port, and one whose path is long, are masked in those forms too.
    env.ok(&[
        "secret",
        "create",
        "far",
        &format!(
            "--url=http://nohost.invalid/services/T9/hidden-part/{}",
            "x".repeat(300)
        ),
    ]);
    env.ok(&[
        "alerter",
        "register",
        "far",
        "--flavor=webhook",
        "--webhook_url={{far.url}}",
    ]);
    let far = env.run(&["alerter", "describe", "far", "--verbose"]);
    assert!(far.stderr.contains("nohost.invalid"), "{}", far.stderr);
    assert!(
        !far.stderr.contains("hidden-part") && !far.stdout.contains("hidden-part"),
        "{}{}",
        far.stdout,
        far.stderr
    );
    let posts: Vec<serde_json::Value> = hook
        .received()
        .into_iter()
        .filter(|(line, _)| line.starts_with("post /services/t0/b1/secret-part"))
        .map(|(_, body)| serde_json::from_slice(&body).expect("a JSON body"))
        .collect();
    assert_eq!(posts.len(), 1);
    let text = posts[0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("training finished"), "{}", posts[0]);
    assert!(posts[0]["blocks"].is_array(), "{}", posts[0]);
    // The service fails: one line naming the alerter and the status, never the URL's
    // secret path; the phase stays.
    hook.answer(500);
    let err = env.fail(&["alerter", "post", "team", "again"]);
    one_line_naming(&err, "`team`");
    assert!(err.contains("500"), "{err}");
    assert!(!err.contains("secret-part"), "{err}");
    assert_eq!(phase(&env, "alerter", "team"), "running");
    env.ok(&["alerter", "down", "team", "--force"]);
    // A server slower than the call's deadline: one line naming the alerter, in time.
    let slow = Hook::start();
    slow.slow(std::time::Duration::from_secs(6));
    env.ok(&[
        "alerter",
        "register",
        "slow",
        "--flavor=webhook",
        &format!("--webhook_url={}", slow.url("/hook")),
        "--timeout-ms=1500",
    ]);
    let started = std::time::Instant::now();
    let err = env.fail(&["alerter", "post", "slow", "hello"]);
    one_line_naming(&err, "`slow`");
    assert!(
        err.contains("timed out") || err.contains("deadline"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // An alerter whose flavor has no `post` is told which world to build for.
    env.ok(&[
        "alerter",
        "flavor",
        "register",
        &crate::support::wasm("fixture_alerter"),
    ]);
    env.ok(&[
        "alerter",
        "register",
        "old",
        "--flavor=alerter",
        "--channel=ops",
        &format!("--path={}", env.path("old")),
    ]);
    let err = env.refused(&["alerter", "post", "old", "hello"]);
    assert!(err.contains("alerter-flavor"), "{err}");
}

/// The README's "A stack of real services", run as written: its one `sh` block, with
/// `strata` from this build, on this test's home, reusing the run's MLflow.
#[test]
fn the_readme_stack_of_real_services_runs_as_written() {
    let env = Env::new();
    let servers = tempfile::tempdir().unwrap();
    // Whatever happens to the script, its servers are stopped.
    struct Stop(std::path::PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = std::process::Command::new(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/servers.sh"),
            )
            .arg("stop")
            .env("STRATA_SERVERS", &self.0)
            .status();
        }
    }
    let _stop = Stop(servers.path().join("s"));
    let state = servers.path().join("s");
    let (stdout, stderr) = super::support::run_readme(
        "real-services",
        &[
            ("STRATA_HOME", env.home().as_os_str()),
            ("STRATA_SERVERS", state.as_os_str()),
            ("MLFLOW_URL", std::ffi::OsStr::new(mlflow())),
        ],
    );
    assert!(stdout.contains("model.pkl"), "{stdout}");
    assert!(stderr.contains("Stack `real` is up"), "{stderr}");
}
