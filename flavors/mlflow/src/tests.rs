//! The lifecycle against a fake MLflow answering through `http::answer_with`: the
//! requests each call makes, what it keeps, and what it says.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{Value, json};
use strata_flavor_sdk::Context;
use strata_flavor_sdk::http::{self, Request, Response};
use strata_flavor_sdk::log;

use super::MlflowTracker as T;
use crate::exports::strata::flavor::experiment_tracker::Guest as Tracker;
use crate::exports::strata::flavor::lifecycle::Guest;

const URL: &str = "http://127.0.0.1:5000";

#[derive(Clone)]
struct Exp {
    id: String,
    name: String,
    stage: &'static str,
    tags: Vec<(String, String)>,
    location: String,
}

#[derive(Default)]
struct Mlflow {
    experiments: Vec<Exp>,
    runs: Vec<Value>,
    params: Vec<(String, String, String)>,
    statuses: Vec<(String, String)>,
    /// The bodies of `runs/search` and `runs/update`, in order.
    searches: Vec<Value>,
    updates: Vec<Value>,
    /// `METHOD /path` of every request, in order.
    seen: Vec<String>,
    /// Answer every request with this status and body instead.
    broken: Option<(u16, String)>,
    /// Answer the requests to this route (`/api/2.0/mlflow/runs/search`) with this
    /// status and body instead.
    broken_at: Option<(&'static str, u16, String)>,
    /// Requests fail as a refused connection.
    down: bool,
}

fn ok(value: Value) -> Result<Response, http::Error> {
    Ok(Response {
        status: 200,
        headers: Vec::new(),
        body: value.to_string().into_bytes(),
    })
}

fn missing(message: &str) -> Result<Response, http::Error> {
    Ok(Response {
        status: 404,
        headers: Vec::new(),
        body: json!({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": message})
            .to_string()
            .into_bytes(),
    })
}

fn describe(e: &Exp) -> Value {
    let tags: Vec<Value> = e
        .tags
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    json!({"experiment": {"experiment_id": e.id, "name": e.name, "lifecycle_stage": e.stage,
        "artifact_location": e.location, "tags": tags}})
}

fn query(path: &str, key: &str) -> Option<String> {
    let (_, q) = path.split_once('?')?;
    q.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| decode(v))
    })
}

fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

impl Mlflow {
    fn answer(&mut self, request: &Request) -> Result<Response, http::Error> {
        let path = request
            .url()
            .strip_prefix(URL)
            .expect("the tracking uri")
            .to_string();
        let route = path.split('?').next().unwrap().to_string();
        self.seen.push(format!("{} {route}", request.method()));
        if self.down {
            return Err(http::Error::Http("ErrorCode::ConnectionRefused".into()));
        }
        let broken_here = self
            .broken_at
            .as_ref()
            .filter(|(at, _, _)| *at == route)
            .map(|(_, status, body)| (*status, body.clone()));
        if let Some((status, body)) = self.broken.clone().or(broken_here) {
            return Ok(Response {
                status,
                headers: Vec::new(),
                body: body.into_bytes(),
            });
        }
        let body: Value = serde_json::from_slice(request.body_bytes()).unwrap_or(Value::Null);
        let id = body["experiment_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let by_id = |me: &mut Mlflow| me.experiments.iter().position(|e| e.id == id);
        match (request.method(), route.as_str()) {
            ("GET", "/api/2.0/mlflow/experiments/get-by-name") => {
                let name = query(&path, "experiment_name").unwrap();
                match self.experiments.iter().find(|e| e.name == name) {
                    Some(e) => ok(describe(e)),
                    None => missing(&format!("Could not find experiment with name '{name}'")),
                }
            }
            ("GET", "/api/2.0/mlflow/experiments/get") => {
                let id = query(&path, "experiment_id").unwrap();
                match self.experiments.iter().find(|e| e.id == id) {
                    Some(e) => ok(describe(e)),
                    None => missing(&format!("No Experiment with id={id} exists")),
                }
            }
            ("POST", "/api/2.0/mlflow/experiments/create") => {
                let name = body["name"].as_str().unwrap().to_string();
                if self.experiments.iter().any(|e| e.name == name) {
                    return Ok(Response {
                        status: 400,
                        headers: Vec::new(),
                        body: json!({"error_code": "RESOURCE_ALREADY_EXISTS",
                            "message": format!("Experiment(name={name}) already exists.\n[SQL: …]")})
                            .to_string()
                            .into_bytes(),
                    });
                }
                let id = (self.experiments.len() + 1).to_string();
                let tags = body["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        (
                            t["key"].as_str().unwrap().into(),
                            t["value"].as_str().unwrap().into(),
                        )
                    })
                    .collect();
                let location = body["artifact_location"]
                    .as_str()
                    .map_or(format!("/art/{id}"), str::to_string);
                self.experiments.push(Exp {
                    id: id.clone(),
                    name,
                    stage: "active",
                    tags,
                    location,
                });
                ok(json!({"experiment_id": id}))
            }
            ("POST", "/api/2.0/mlflow/experiments/restore") => match by_id(self) {
                Some(at) => {
                    self.experiments[at].stage = "active";
                    ok(json!({}))
                }
                None => missing("no such experiment"),
            },
            ("POST", "/api/2.0/mlflow/experiments/delete") => match by_id(self) {
                Some(at) if self.experiments[at].stage == "active" => {
                    self.experiments[at].stage = "deleted";
                    ok(json!({}))
                }
                _ => missing(&format!("No Experiment with id={id} exists")),
            },
            ("POST", "/api/2.0/mlflow/runs/create") => {
                self.runs.push(body);
                let run = format!("run{}", self.runs.len());
                ok(json!({"run": {"info": {"run_id": run, "run_uuid": run, "experiment_id": id}}}))
            }
            ("POST", "/api/2.0/mlflow/runs/log-batch") => {
                let run = body["run_id"].as_str().unwrap().to_string();
                for p in body["params"].as_array().unwrap() {
                    let key = p["key"].as_str().unwrap();
                    if key.contains('!') {
                        return Ok(Response {
                            status: 400,
                            headers: Vec::new(),
                            body: json!({"error_code": "INVALID_PARAMETER_VALUE",
                                "message": format!("Invalid value \"{key}\" for parameter 'params[0].key'")})
                                .to_string()
                                .into_bytes(),
                        });
                    }
                    self.params.push((
                        run.clone(),
                        key.into(),
                        p["value"].as_str().unwrap().into(),
                    ));
                }
                ok(json!({}))
            }
            ("POST", "/api/2.0/mlflow/runs/search") => {
                self.searches.push(body.clone());
                let filter = body["filter"].as_str().unwrap();
                let wanted = filter
                    .strip_prefix("tags.`strata.run_id` = '")
                    .and_then(|rest| rest.strip_suffix('\''))
                    .expect("a filter on strata's run id");
                let in_experiments = body["experiment_ids"].as_array().unwrap();
                // The newest first, as `order_by` asks; at most `max_results`.
                let found: Vec<Value> =
                    self.runs
                        .iter()
                        .enumerate()
                        .rev()
                        .filter(|(_, run)| {
                            in_experiments.contains(&run["experiment_id"])
                                && run["tags"].as_array().unwrap().iter().any(|tag| {
                                    tag["key"] == "strata.run_id" && tag["value"] == wanted
                                })
                        })
                        .map(|(at, run)| {
                            let id = format!("run{}", at + 1);
                            json!({"info": {"run_id": id, "run_uuid": id, "status": "RUNNING",
                            "experiment_id": run["experiment_id"]}, "data": {"tags": run["tags"]}})
                        })
                        .take(body["max_results"].as_u64().unwrap() as usize)
                        .collect();
                if found.is_empty() {
                    ok(json!({}))
                } else {
                    ok(json!({"runs": found}))
                }
            }
            ("POST", "/api/2.0/mlflow/runs/update") => {
                self.updates.push(body.clone());
                let run = body["run_id"].as_str().unwrap().to_string();
                self.statuses
                    .push((run, body["status"].as_str().unwrap().into()));
                ok(json!({"run_info": {}}))
            }
            _ => Ok(Response {
                status: 404,
                headers: Vec::new(),
                body: b"<h1>Not Found</h1>".to_vec(),
            }),
        }
    }
}

/// A fake MLflow answering this thread's requests.
fn serve() -> Rc<RefCell<Mlflow>> {
    let fake = Rc::new(RefCell::new(Mlflow::default()));
    let answering = fake.clone();
    http::answer_with(move |request| answering.borrow_mut().answer(request));
    log::take();
    fake
}

fn ctx(config: &[(&str, &str)], state: &Option<Vec<u8>>) -> Context {
    Context {
        component_id: "c-1".into(),
        component_name: "exp".into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        state: state.clone(),
    }
}

const CONFIG: &[(&str, &str)] = &[("tracking_uri", URL), ("experiment_name", "training")];

fn kept(state: &Option<Vec<u8>>) -> Value {
    serde_json::from_slice::<Value>(state.as_deref().unwrap()).unwrap()["state"].clone()
}

fn said() -> Vec<String> {
    log::take().into_iter().map(|(_, line)| line).collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn validate_checks_the_name_and_the_url() {
    assert!(<T as Guest>::validate(pairs(CONFIG)).is_ok());
    // No server at all is fine here: a connector may be bound (validate never sees it).
    assert!(<T as Guest>::validate(pairs(&[("experiment_name", "e")])).is_ok());
    let errors = <T as Guest>::validate(pairs(&[
        ("experiment_name", "  "),
        ("tracking_uri", "http://u:p@127.0.0.1:5000"),
    ]))
    .unwrap_err();
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_deref().unwrap()).collect();
    assert_eq!(fields, ["experiment_name", "tracking_uri"]);
    let long = "x".repeat(501);
    let errors = <T as Guest>::validate(pairs(&[("experiment_name", &long)])).unwrap_err();
    assert!(
        errors[0].message.contains("501 characters"),
        "{}",
        errors[0].message
    );
    assert!(<T as Guest>::validate(pairs(&[("experiment_name", &"x".repeat(500))])).is_ok());
}

#[test]
fn provision_creates_the_experiment_once_and_status_sees_it() {
    let fake = serve();
    let before = <T as Guest>::status(ctx(CONFIG, &None));
    assert!(!before.provisioned);
    assert_eq!(
        before.detail,
        "experiment `training` at http://127.0.0.1:5000: missing"
    );

    let state = <T as Guest>::provision(ctx(CONFIG, &None)).unwrap();
    assert_eq!(kept(&state), json!({"experiment_id": "1", "created": true}));
    assert_eq!(
        fake.borrow().experiments[0].tags,
        [("strata.component_id".into(), "c-1".into())]
    );
    assert_eq!(
        said(),
        ["created experiment `training` (id 1) at http://127.0.0.1:5000"]
    );

    let again = <T as Guest>::provision(ctx(CONFIG, &state)).unwrap();
    assert_eq!(kept(&again), kept(&state));
    assert_eq!(fake.borrow().experiments.len(), 1);

    let status = <T as Guest>::status(ctx(CONFIG, &state));
    assert!(status.provisioned && !status.running);
    assert_eq!(
        status.detail,
        "experiment `training` (id 1) at http://127.0.0.1:5000: active"
    );
    let state = <T as Guest>::resume(ctx(CONFIG, &state)).unwrap();
    assert!(<T as Guest>::status(ctx(CONFIG, &state)).running);
}

#[test]
fn an_existing_experiment_is_adopted_and_never_deleted() {
    let fake = serve();
    fake.borrow_mut().experiments.push(Exp {
        id: "9".into(),
        name: "training".into(),
        stage: "active",
        tags: Vec::new(),
        location: "/elsewhere".into(),
    });
    let config = [CONFIG, &[("artifact_location", "s3://b/x")]].concat();
    let state = <T as Guest>::provision(ctx(&config, &None)).unwrap();
    assert_eq!(
        kept(&state),
        json!({"experiment_id": "9", "created": false})
    );
    let lines = said();
    assert!(
        lines[0].starts_with("adopted the existing experiment `training` (id 9)"),
        "{lines:?}"
    );
    assert!(lines[1].contains("MLflow cannot move"), "{lines:?}");

    let state = <T as Guest>::suspend(ctx(&config, &state)).unwrap();
    assert_eq!(
        said(),
        ["the experiment stays; MLflow has nothing to stop (experiment `training`)"]
    );
    fake.borrow_mut().seen.clear();
    <T as Guest>::deprovision(ctx(&config, &state)).unwrap();
    assert!(
        fake.borrow().seen.is_empty(),
        "no request: {:?}",
        fake.borrow().seen
    );
    assert_eq!(fake.borrow().experiments[0].stage, "active");
    assert!(said()[0].starts_with("left experiment `training` (id 9) in place"));
}

#[test]
fn an_experiment_found_by_status_is_adopted_by_resume() {
    let fake = serve();
    fake.borrow_mut().experiments.push(Exp {
        id: "9".into(),
        name: "training".into(),
        stage: "active",
        tags: Vec::new(),
        location: "/art/9".into(),
    });
    // `up` sees it provisioned, so calls `resume` alone.
    assert!(<T as Guest>::status(ctx(CONFIG, &None)).provisioned);
    let state = <T as Guest>::resume(ctx(CONFIG, &None)).unwrap();
    assert_eq!(
        kept(&state),
        json!({"experiment_id": "9", "created": false})
    );
    assert!(said()[0].starts_with("adopted the existing experiment `training` (id 9)"));
    let state = <T as Guest>::resume(ctx(CONFIG, &state)).unwrap();
    assert!(said().is_empty(), "adopted once");
    <T as Guest>::deprovision(ctx(CONFIG, &state)).unwrap();
    assert_eq!(fake.borrow().experiments[0].stage, "active");
}

#[test]
fn deprovision_deletes_what_it_created_and_up_restores_it_as_its_own() {
    let fake = serve();
    let state = <T as Guest>::provision(ctx(CONFIG, &None)).unwrap();
    let state = <T as Guest>::deprovision(ctx(CONFIG, &state)).unwrap();
    assert_eq!(fake.borrow().experiments[0].stage, "deleted");
    assert_eq!(
        kept(&state),
        json!({"experiment_id": null, "created": false})
    );
    let status = <T as Guest>::status(ctx(CONFIG, &state));
    assert!(!status.provisioned);
    assert!(status.detail.ends_with(": deleted"), "{}", status.detail);
    said();

    // `up` again: the deleted experiment is restored, and is still this component's.
    let state = <T as Guest>::provision(ctx(CONFIG, &state)).unwrap();
    assert_eq!(kept(&state), json!({"experiment_id": "1", "created": true}));
    assert_eq!(fake.borrow().experiments[0].stage, "active");
    assert_eq!(
        said(),
        ["restored the deleted experiment `training` (id 1) at http://127.0.0.1:5000"]
    );

    // Deleted by hand, then deprovisioned: already removed.
    fake.borrow_mut().experiments[0].stage = "deleted";
    <T as Guest>::deprovision(ctx(CONFIG, &state)).unwrap();
    assert_eq!(said(), ["experiment `training` (id 1) is deleted already"]);
    fake.borrow_mut().experiments.clear();
    <T as Guest>::deprovision(ctx(CONFIG, &state)).unwrap();
    assert_eq!(said(), ["experiment `training` (id 1) is gone already"]);
}

#[test]
fn resume_restores_an_experiment_deleted_by_hand_and_refuses_a_missing_one() {
    let fake = serve();
    let state = <T as Guest>::provision(ctx(CONFIG, &None)).unwrap();
    fake.borrow_mut().experiments[0].stage = "deleted";
    let state = <T as Guest>::resume(ctx(CONFIG, &state)).unwrap();
    assert_eq!(fake.borrow().experiments[0].stage, "active");
    assert_eq!(kept(&state)["created"], true);
    fake.borrow_mut().experiments.clear();
    let err = <T as Guest>::resume(ctx(CONFIG, &state)).unwrap_err();
    assert_eq!(
        err,
        "experiment `training` is missing at http://127.0.0.1:5000: there is nothing to resume; \
         run `strata experiment-tracker up exp` to create it again"
    );
}

#[test]
fn a_pipeline_run_becomes_an_mlflow_run_with_its_parameters() {
    let fake = serve();
    let state = <T as Guest>::provision(ctx(CONFIG, &None)).unwrap();
    said();
    fake.borrow_mut().seen.clear();
    let runtime = pairs(&[
        ("lr", "0.1"),
        ("epochs", "3"),
        ("strata.run_id", "0123456789abcdef"),
        ("strata.pipeline", "training"),
        ("strata.stack", "dev"),
    ]);
    <T as Guest>::prepare_pipeline_deployment(ctx(CONFIG, &state), runtime).unwrap();
    let fake = fake.borrow();
    assert_eq!(
        fake.seen,
        [
            "GET /api/2.0/mlflow/experiments/get-by-name",
            "POST /api/2.0/mlflow/runs/create",
            "POST /api/2.0/mlflow/runs/log-batch",
        ]
    );
    let run = &fake.runs[0];
    assert_eq!(run["experiment_id"], "1");
    assert_eq!(run["run_name"], "training-01234567");
    assert!(run["start_time"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(
        run["tags"][2],
        json!({"key": "strata.stack", "value": "dev"})
    );
    assert_eq!(
        fake.params,
        [
            ("run1".into(), "lr".into(), "0.1".into()),
            ("run1".into(), "epochs".into(), "3".into())
        ]
    );
    assert_eq!(
        said(),
        [
            "MLflow run run1 (`training-01234567`, 2 parameters) in experiment `training`: \
          http://127.0.0.1:5000/#/experiments/1/runs/run1"
        ]
    );
}

#[test]
fn a_run_whose_parameters_are_refused_is_marked_failed_and_stops_the_pipeline() {
    let fake = serve();
    let state = <T as Guest>::provision(ctx(CONFIG, &None)).unwrap();
    let err =
        <T as Guest>::prepare_pipeline_deployment(ctx(CONFIG, &state), pairs(&[("bad!", "1")]))
            .unwrap_err();
    assert_eq!(
        err,
        "could not log the runtime parameters on run run1: http://127.0.0.1:5000 answered HTTP \
         400: INVALID_PARAMETER_VALUE: Invalid value \"bad!\" for parameter 'params[0].key'"
    );
    assert_eq!(fake.borrow().statuses, [("run1".into(), "FAILED".into())]);
}

#[test]
fn a_run_needs_the_experiment() {
    let _fake = serve();
    let err =
        <T as Guest>::prepare_pipeline_deployment(ctx(CONFIG, &None), Vec::new()).unwrap_err();
    assert!(
        err.starts_with("experiment `training` at http://127.0.0.1:5000 is missing"),
        "{err}"
    );
    assert!(err.contains("`strata stack up`"), "{err}");
}

#[test]
fn a_server_that_is_down_fails_each_call_on_one_line_naming_its_url() {
    let fake = serve();
    fake.borrow_mut().down = true;
    let err = <T as Guest>::provision(ctx(CONFIG, &None)).unwrap_err();
    assert_eq!(
        err,
        "could not look up experiment `training`: could not connect to http://127.0.0.1:5000 \
         (ConnectionRefused): the MLflow server may be down; check that the MLflow server is \
         running at http://127.0.0.1:5000, or fix `tracking_uri` (or the connector's endpoint)"
    );
    let status = <T as Guest>::status(ctx(CONFIG, &None));
    assert!(!status.provisioned && status.detail == err);
}

#[test]
fn server_errors_carry_mlflow_s_own_message_and_a_hint() {
    let fake = serve();
    fake.borrow_mut().broken = Some((
        500,
        json!({"error_code": "INTERNAL_ERROR", "message": "database\nis locked"}).to_string(),
    ));
    let err = <T as Guest>::provision(ctx(CONFIG, &None)).unwrap_err();
    assert_eq!(
        err,
        "could not look up experiment `training`: http://127.0.0.1:5000 answered HTTP 500: \
         INTERNAL_ERROR: database is locked; the MLflow server failed: see its log"
    );
    fake.borrow_mut().broken = Some((
        403,
        "Invalid Host header - possible DNS rebinding attack detected".into(),
    ));
    let err = <T as Guest>::provision(ctx(CONFIG, &None)).unwrap_err();
    assert!(err.contains("HTTP 403: Invalid Host header"), "{err}");
    assert!(err.contains("`--allowed-hosts 127.0.0.1:5000`"), "{err}");
    fake.borrow_mut().broken = Some((401, String::new()));
    let err = <T as Guest>::provision(ctx(CONFIG, &None)).unwrap_err();
    assert!(
        err.contains("answered HTTP 401; the MLflow server wants credentials"),
        "{err}"
    );
    fake.borrow_mut().broken = Some((200, "<html>".into()));
    let err = <T as Guest>::provision(ctx(CONFIG, &None)).unwrap_err();
    assert!(err.contains("is an MLflow tracking server"), "{err}");
}

#[test]
fn the_connector_s_endpoint_is_the_server_and_must_match_the_tracking_uri() {
    let fake = serve();
    let bound = [
        ("experiment_name", "training"),
        ("connector.name", "ml"),
        ("connector.type", "bearer"),
        ("connector.endpoint", URL),
    ];
    <T as Guest>::provision(ctx(&bound, &None)).unwrap();
    assert_eq!(fake.borrow().experiments.len(), 1);
    let elsewhere = [&bound[..], &[("tracking_uri", "http://127.0.0.1:6000")]].concat();
    let err = <T as Guest>::provision(ctx(&elsewhere, &None)).unwrap_err();
    assert!(err.contains("is not on the origin of connector"), "{err}");
    assert!(!err.contains('\n'));
    let none = [("experiment_name", "training")];
    let err = <T as Guest>::provision(ctx(&none, &None)).unwrap_err();
    assert!(err.starts_with("`exp` names no MLflow server"), "{err}");
    let status = <T as Guest>::status(ctx(&none, &None));
    assert!(!status.provisioned && status.detail == err);
}

#[test]
fn names_are_percent_encoded_in_the_query() {
    let fake = serve();
    let config = [
        ("tracking_uri", URL),
        ("experiment_name", "my team/exp & co"),
    ];
    <T as Guest>::provision(ctx(&config, &None)).unwrap();
    let status = <T as Guest>::status(ctx(&config, &None));
    assert!(status.provisioned, "{}", status.detail);
    assert_eq!(fake.borrow().experiments[0].name, "my team/exp & co");
}

/// A provisioned component with the MLflow run of strata run `run_id` made by
/// `prepare-pipeline-deployment`; its state.
fn prepared(fake: &Rc<RefCell<Mlflow>>, run_id: &str) -> Option<Vec<u8>> {
    let state = <T as Guest>::provision(ctx(CONFIG, &None)).unwrap();
    let runtime = pairs(&[("strata.run_id", run_id), ("strata.pipeline", "training")]);
    <T as Guest>::prepare_pipeline_deployment(ctx(CONFIG, &state), runtime).unwrap();
    said();
    fake.borrow_mut().seen.clear();
    state
}

#[test]
fn the_steps_get_the_server_the_experiment_and_the_run_to_log_into() {
    let fake = serve();
    let state = prepared(&fake, "0123456789abcdef");
    let runtime = pairs(&[("strata.run_id", "fedcba9876543210")]);
    <T as Guest>::prepare_pipeline_deployment(ctx(CONFIG, &state), runtime).unwrap();
    said();
    fake.borrow_mut().seen.clear();

    let env =
        <T as Tracker>::step_environment(ctx(CONFIG, &state), "0123456789abcdef".into()).unwrap();
    assert_eq!(
        env,
        pairs(&[
            ("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
            ("MLFLOW_EXPERIMENT_ID", "1"),
            ("MLFLOW_EXPERIMENT_NAME", "training"),
            ("MLFLOW_RUN_ID", "run1"),
        ])
    );
    assert_eq!(
        fake.borrow().seen,
        [
            "GET /api/2.0/mlflow/experiments/get-by-name",
            "POST /api/2.0/mlflow/runs/search",
        ]
    );
    assert_eq!(
        fake.borrow().searches[0],
        json!({
            "experiment_ids": ["1"],
            "filter": "tags.`strata.run_id` = '0123456789abcdef'",
            "run_view_type": "ACTIVE_ONLY",
            "max_results": 1,
            "order_by": ["attributes.start_time DESC"],
        })
    );
    let other =
        <T as Tracker>::step_environment(ctx(CONFIG, &state), "fedcba9876543210".into()).unwrap();
    assert_eq!(other[3], ("MLFLOW_RUN_ID".into(), "run2".into()));
    assert!(fake.borrow().updates.is_empty(), "the run is left running");
    assert!(said().is_empty());

    // Through a connector: its endpoint is the URI, and its credentials stay with strata.
    let bound = [
        ("experiment_name", "training"),
        ("connector.name", "ml"),
        ("connector.type", "bearer"),
        ("connector.endpoint", "http://127.0.0.1:5000/"),
    ];
    let env =
        <T as Tracker>::step_environment(ctx(&bound, &state), "0123456789abcdef".into()).unwrap();
    assert_eq!(
        env[0],
        ("MLFLOW_TRACKING_URI".into(), "http://127.0.0.1:5000".into())
    );
    for (name, value) in &env {
        assert!(
            !name.starts_with("STRATA_") && !value.contains('@'),
            "{name}={value}"
        );
    }
}

#[test]
fn finish_run_maps_each_status_onto_mlflow_s_and_ends_the_run_now() {
    let fake = serve();
    let state = prepared(&fake, "0123456789abcdef");
    for (status, mlflow) in [
        ("completed", "FINISHED"),
        ("failed", "FAILED"),
        ("cancelled", "KILLED"),
    ] {
        fake.borrow_mut().seen.clear();
        let line = <T as Tracker>::finish_run(
            ctx(CONFIG, &state),
            "0123456789abcdef".into(),
            status.into(),
        )
        .unwrap();
        assert_eq!(
            line,
            format!("run run1 of experiment `training` marked {mlflow}")
        );
        let fake = fake.borrow();
        assert_eq!(
            fake.seen,
            [
                "GET /api/2.0/mlflow/experiments/get-by-name",
                "POST /api/2.0/mlflow/runs/search",
                "POST /api/2.0/mlflow/runs/update",
            ]
        );
        let update = fake.updates.last().unwrap();
        assert_eq!(update["run_id"], "run1");
        assert_eq!(update["status"], mlflow);
        let end = update["end_time"].as_u64().unwrap();
        assert!(
            end >= fake.runs[0]["start_time"].as_u64().unwrap(),
            "{update}"
        );
        assert_eq!(update.as_object().unwrap().len(), 3, "{update}");
    }
    assert!(said().is_empty());

    fake.borrow_mut().seen.clear();
    let err = <T as Tracker>::finish_run(
        ctx(CONFIG, &state),
        "0123456789abcdef".into(),
        "interrupted".into(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "cannot close the MLflow run of strata run 0123456789abcdef as `interrupted`: this \
         flavor knows `completed`, `failed` and `cancelled`; strata is newer than this flavor: \
         register a newer mlflow flavor"
    );
    assert!(
        fake.borrow().seen.is_empty(),
        "no request: {:?}",
        fake.borrow().seen
    );
}

#[test]
fn a_run_that_is_not_in_mlflow_is_a_clear_error() {
    let fake = serve();
    let state = prepared(&fake, "0123456789abcdef");
    let missing = "experiment `training` (id 1) at http://127.0.0.1:5000 has no active run \
                   tagged `strata.run_id` = `aaaaaaaa`; the tracker creates it when the \
                   pipeline run starts: it was deleted in MLflow (restore it there), or the run \
                   started without this tracker in its stack; run the pipeline again";
    let err = <T as Tracker>::step_environment(ctx(CONFIG, &state), "aaaaaaaa".into()).unwrap_err();
    assert_eq!(err, missing);
    let err = <T as Tracker>::finish_run(ctx(CONFIG, &state), "aaaaaaaa".into(), "failed".into())
        .unwrap_err();
    assert_eq!(err, missing);
    assert!(fake.borrow().updates.is_empty());

    // No experiment at all: it says which, and how to make it.
    fake.borrow_mut().experiments.clear();
    let err = <T as Tracker>::step_environment(ctx(CONFIG, &state), "0123456789abcdef".into())
        .unwrap_err();
    assert_eq!(
        err,
        "experiment `training` at http://127.0.0.1:5000 is missing: it holds no MLflow run of \
         strata run 0123456789abcdef; run `strata stack up` (or `strata experiment-tracker up \
         exp`) to provision it, then run the pipeline again"
    );

    // A run id MLflow's filter cannot hold is refused before any request.
    fake.borrow_mut().seen.clear();
    let err = <T as Tracker>::step_environment(ctx(CONFIG, &state), "a' OR '1".into()).unwrap_err();
    assert!(err.contains("cannot be searched for in MLflow"), "{err}");
    assert!(fake.borrow().seen.is_empty());
}

#[test]
fn a_server_error_while_finding_or_closing_the_run_is_one_clear_line() {
    let fake = serve();
    let state = prepared(&fake, "0123456789abcdef");
    let failure = json!({"error_code": "INTERNAL_ERROR", "message": "database\nis locked"});
    fake.borrow_mut().broken_at = Some(("/api/2.0/mlflow/runs/search", 500, failure.to_string()));
    let err = <T as Tracker>::step_environment(ctx(CONFIG, &state), "0123456789abcdef".into())
        .unwrap_err();
    assert_eq!(
        err,
        "could not search experiment 1 for its run: http://127.0.0.1:5000 answered HTTP 500: \
         INTERNAL_ERROR: database is locked; the MLflow server failed: see its log"
    );

    fake.borrow_mut().broken_at = Some(("/api/2.0/mlflow/runs/update", 500, failure.to_string()));
    let err = <T as Tracker>::finish_run(
        ctx(CONFIG, &state),
        "0123456789abcdef".into(),
        "completed".into(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "could not mark run run1 FINISHED: http://127.0.0.1:5000 answered HTTP 500: \
         INTERNAL_ERROR: database is locked; the MLflow server failed: see its log"
    );

    fake.borrow_mut().broken_at = Some(("/api/2.0/mlflow/runs/search", 200, "<html>".into()));
    let err = <T as Tracker>::step_environment(ctx(CONFIG, &state), "0123456789abcdef".into())
        .unwrap_err();
    assert!(err.contains("is an MLflow tracking server"), "{err}");
    assert!(!err.contains('\n'));

    fake.borrow_mut().broken_at = None;
    fake.borrow_mut().down = true;
    let err = <T as Tracker>::finish_run(
        ctx(CONFIG, &state),
        "0123456789abcdef".into(),
        "completed".into(),
    )
    .unwrap_err();
    assert!(
        err.contains("could not connect to http://127.0.0.1:5000 (ConnectionRefused)"),
        "{err}"
    );
}
