//! The part of MLflow's REST API 2.0 this flavor uses
//! (<https://mlflow.org/docs/latest/rest-api.html>): experiments by name, create,
//! restore and delete; runs create, log-batch, search and update. Each function makes one
//! request (`log_params` one per hundred parameters) and turns every failure into one
//! line saying what failed, the status and MLflow's own `error_code: message`.

use serde::Deserialize;
use serde_json::{Value, json};
use strata_flavor_sdk::Error;
use strata_flavor_sdk::http::{Request, Response};

use strata_flavor_sdk::endpoint::{self, Server, Service};

/// MLflow, as messages name it.
pub const SERVICE: Service = Service {
    field: "tracking_uri",
    what: "MLflow server",
    command: "experiment-tracker",
    example: "http://127.0.0.1:5000",
};

/// The most parameters MLflow takes in one `runs/log-batch`.
pub const PARAMS_PER_BATCH: usize = 100;

/// The tag strata puts on the experiments it creates: the component's id. An
/// experiment carrying this component's id was created by it, whatever the state says
/// (a state lost to a crash, or reset by `deprovision` before a `restore`).
pub const CREATOR_TAG: &str = "strata.component_id";

/// The tag strata puts on the MLflow run of a pipeline run: strata's run id. It is how
/// `step-environment` and `finish-run` find the run again.
pub const RUN_TAG: &str = "strata.run_id";

/// An experiment, as `experiments/get-by-name` and `experiments/get` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    #[serde(default)]
    pub artifact_location: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A `key`/`value` pair: an experiment's or run's tag, a run's parameter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

impl Experiment {
    /// Not deleted: MLflow shows it and takes runs in it.
    pub fn is_active(&self) -> bool {
        self.lifecycle_stage != "deleted"
    }

    /// `active` or `deleted`, for a status line.
    pub fn stage(&self) -> &'static str {
        if self.is_active() {
            "active"
        } else {
            "deleted"
        }
    }

    /// The value of tag `key`, if the experiment has it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }
}

/// MLflow's own words in an error body: `ERROR_CODE: message`.
pub fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let message = value.get("message").and_then(Value::as_str);
    let code = value.get("error_code").and_then(Value::as_str);
    match (code, message) {
        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
        (None, Some(message)) => Some(message.to_string()),
        (Some(code), None) => Some(code.to_string()),
        (None, None) => None,
    }
}

/// The `error_code` of an MLflow error body.
fn error_code(answer: &Response) -> Option<String> {
    let value: Value = serde_json::from_slice(&answer.body).ok()?;
    value.get("error_code")?.as_str().map(str::to_string)
}

/// The experiment of a `get-by-name` or `get` answer: `{"experiment": {…}}`.
pub fn parse_experiment(body: &[u8]) -> Result<Experiment, String> {
    #[derive(Deserialize)]
    struct Answer {
        experiment: Experiment,
    }
    serde_json::from_slice::<Answer>(body)
        .map(|a| a.experiment)
        .map_err(|e| format!("not the experiment MLflow describes ({e})"))
}

/// The run id of a `runs/create` answer: `{"run": {"info": {"run_id": …}}}`.
pub fn parse_run_id(body: &[u8]) -> Result<String, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    let info = &value["run"]["info"];
    info["run_id"]
        .as_str()
        .or_else(|| info["run_uuid"].as_str())
        .map(str::to_string)
        .ok_or_else(|| "no `run.info.run_id` in the answer".to_string())
}

/// The name of the MLflow run of a strata run: `PIPELINE-RUNID8` (the first 8
/// characters of strata's run id).
pub fn run_name(pipeline: Option<&str>, run_id: Option<&str>) -> String {
    let pipeline = pipeline.filter(|p| !p.is_empty()).unwrap_or("strata");
    match run_id.filter(|r| !r.is_empty()) {
        Some(id) => {
            let short: String = id.chars().take(8).collect();
            format!("{pipeline}-{short}")
        }
        None => pipeline.to_string(),
    }
}

/// The body of `runs/create` for a run of `runtime` (strata's pairs included): its name,
/// start time and the `strata.*` pairs as tags.
pub fn run_request(experiment_id: &str, runtime: &[(String, String)], start_ms: u64) -> Value {
    let get = |key: &str| {
        runtime
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let tags: Vec<Value> = [RUN_TAG, "strata.pipeline", "strata.stack"]
        .iter()
        .filter_map(|key| get(key).map(|value| json!({"key": key, "value": value})))
        .collect();
    json!({
        "experiment_id": experiment_id,
        "run_name": run_name(get("strata.pipeline"), get("strata.run_id")),
        "start_time": start_ms,
        "tags": tags,
    })
}

/// The user's runtime pairs, as the run's parameters: every pair but strata's own
/// (`strata.*`), each key once (its first value).
pub fn run_params(runtime: &[(String, String)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (key, value) in runtime {
        if key.starts_with("strata.") || params.iter().any(|(k, _)| k == key) {
            continue;
        }
        params.push((key.clone(), value.clone()));
    }
    params
}

/// The bodies of `runs/log-batch` logging `params` on `run_id`, a hundred at most each.
pub fn batches(run_id: &str, params: &[(String, String)]) -> Vec<Value> {
    params
        .chunks(PARAMS_PER_BATCH)
        .map(|chunk| {
            let params: Vec<Value> = chunk
                .iter()
                .map(|(key, value)| json!({"key": key, "value": value}))
                .collect();
            json!({"run_id": run_id, "params": params})
        })
        .collect()
}

/// The page of a run in MLflow's UI.
pub fn run_page(server: &Server, experiment_id: &str, run_id: &str) -> String {
    format!(
        "{}/#/experiments/{experiment_id}/runs/{run_id}",
        server.base
    )
}

/// The filter of `runs/search` that finds the MLflow run of strata run `run_id`: MLflow's
/// filter syntax wants a tag key holding a `.` in backticks. `None` for a run id that
/// cannot be written in it (empty, or holding a quote, a backtick or a backslash, which
/// strata's run ids never do).
pub fn run_filter(run_id: &str) -> Option<String> {
    let plain = !run_id.is_empty()
        && !run_id
            .chars()
            .any(|c| matches!(c, '\'' | '"' | '`' | '\\') || c.is_control());
    plain.then(|| format!("tags.`{RUN_TAG}` = '{run_id}'"))
}

/// The body of `runs/search` for the newest active run of experiment `experiment_id`
/// matching `filter` (see [`run_filter`]).
pub fn search_request(experiment_id: &str, filter: &str) -> Value {
    json!({
        "experiment_ids": [experiment_id],
        "filter": filter,
        "run_view_type": "ACTIVE_ONLY",
        "max_results": 1,
        "order_by": ["attributes.start_time DESC"],
    })
}

/// The run ids of a `runs/search` answer, newest first: `{"runs": [{"info": {"run_id":
/// …}}]}`, or `{}` when no run matched (MLflow leaves an empty list out).
pub fn parse_run_ids(body: &[u8]) -> Result<Vec<String>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    if !value.is_object() {
        return Err("not the runs MLflow lists (not a JSON object)".into());
    }
    let runs = match value.get("runs") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(runs)) => runs,
        Some(_) => return Err("not the runs MLflow lists (`runs` is not a list)".into()),
    };
    runs.iter()
        .map(|run| {
            let info = &run["info"];
            info["run_id"]
                .as_str()
                .or_else(|| info["run_uuid"].as_str())
                .map(str::to_string)
                .ok_or_else(|| "a run without `info.run_id` in the answer".to_string())
        })
        .collect()
}

/// The MLflow status a pipeline run's end maps to: `completed` → `FINISHED`, `failed` →
/// `FAILED`, `cancelled` → `KILLED`; `None` for any other.
pub fn run_status(status: &str) -> Option<&'static str> {
    match status {
        "completed" => Some("FINISHED"),
        "failed" => Some("FAILED"),
        "cancelled" => Some("KILLED"),
        _ => None,
    }
}

/// The body of `runs/update` setting run `run_id`'s `status`, ended at `end_ms` (left
/// out when the clock gave nothing, so that MLflow keeps what it has).
pub fn update_request(run_id: &str, status: &str, end_ms: u64) -> Value {
    let mut body = json!({"run_id": run_id, "status": status});
    if end_ms > 0 {
        body["end_time"] = json!(end_ms);
    }
    body
}

/// `base` as a step may see it: without any `user:password@`, query or fragment (strata
/// refuses them in `tracking_uri`; this keeps a connector's endpoint as clean).
pub fn public_uri(base: &str) -> String {
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_string();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{}", path.trim_end_matches('/'))
}

/// The milliseconds since the Unix epoch now (`wasi:clocks/wall-clock` in the sandbox).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An MLflow server, reached at `server`.
pub struct Mlflow<'a> {
    pub server: &'a Server,
}

impl Mlflow<'_> {
    fn url(&self, path: &str) -> String {
        self.server.url(&format!("/api/2.0/mlflow/{path}"))
    }

    /// Sends `request`; no answer at all is an error saying `doing`.
    fn send(&self, request: Request, doing: &str) -> Result<Response, Error> {
        let request = request.header("accept", "application/json");
        endpoint::send(request, self.server, SERVICE, doing)
    }

    /// The error of an answer that is not a success.
    fn refused(&self, answer: &Response, doing: &str) -> Error {
        let err = endpoint::refused(answer, self.server, SERVICE, doing, error_message);
        if answer.status == 403 && answer.text().contains("Invalid Host header") {
            let host = self
                .server
                .origin()
                .split_once("://")
                .map_or(String::new(), |(_, host)| host.to_string());
            return Error::new(err.message().to_string()).with_hint(format!(
                "MLflow refuses requests for the host `{host}`: start the server with \
                 `--allowed-hosts {host}` (MLflow 3 accepts only localhost and private \
                 addresses by default)"
            ));
        }
        err
    }

    /// A successful answer's body as JSON, or the error of any other answer.
    fn expect(&self, answer: Response, doing: &str) -> Result<Response, Error> {
        if answer.is_success() {
            Ok(answer)
        } else {
            Err(self.refused(&answer, doing))
        }
    }

    fn post(&self, path: &str, body: &Value, doing: &str) -> Result<Response, Error> {
        let answer = self.send(Request::post(&self.url(path)).json(body), doing)?;
        self.expect(answer, doing)
    }

    /// The experiment named `name`, active or deleted, or `None` if there is none.
    pub fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, Error> {
        let doing = format!("could not look up experiment `{name}`");
        let path = format!(
            "experiments/get-by-name?experiment_name={}",
            endpoint::encode(name)
        );
        self.experiment_at(&path, &doing)
    }

    /// The experiment with id `id`, active or deleted, or `None` if there is none.
    pub fn experiment(&self, id: &str) -> Result<Option<Experiment>, Error> {
        let doing = format!("could not look up experiment {id}");
        let path = format!("experiments/get?experiment_id={}", endpoint::encode(id));
        self.experiment_at(&path, &doing)
    }

    fn experiment_at(&self, path: &str, doing: &str) -> Result<Option<Experiment>, Error> {
        let answer = self.send(Request::get(&self.url(path)), doing)?;
        if answer.status == 404 && error_code(&answer).as_deref() == Some("RESOURCE_DOES_NOT_EXIST")
        {
            return Ok(None);
        }
        let answer = self.expect(answer, doing)?;
        parse_experiment(&answer.body)
            .map(Some)
            .map_err(|why| self.unexpected(doing, &why))
    }

    /// An answer that is not what MLflow says: the server is probably not MLflow.
    fn unexpected(&self, doing: &str, why: &str) -> Error {
        Error::new(format!("{doing}: {} answered {why}", self.server.base)).with_hint(format!(
            "check that `tracking_uri` ({}) is an MLflow tracking server",
            self.server.base
        ))
    }

    /// Creates experiment `name` (in `artifact_location`, else the server's default),
    /// tagged with [`CREATOR_TAG`] = `component_id`; its id.
    pub fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        component_id: &str,
    ) -> Result<String, Error> {
        let doing = format!("could not create experiment `{name}`");
        let mut body = json!({
            "name": name,
            "tags": [{"key": CREATOR_TAG, "value": component_id}],
        });
        if let Some(location) = artifact_location {
            body["artifact_location"] = json!(location);
        }
        let answer = self.post("experiments/create", &body, &doing)?;
        let value: Value = answer
            .json()
            .map_err(|e| self.unexpected(&doing, &e.to_string()))?;
        value["experiment_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.unexpected(&doing, "no `experiment_id`"))
    }

    /// Restores the deleted experiment `id` (MLflow accepts an active one too).
    pub fn restore_experiment(&self, id: &str, name: &str) -> Result<(), Error> {
        let doing = format!("could not restore experiment `{name}` (id {id})");
        self.post("experiments/restore", &json!({"experiment_id": id}), &doing)
            .map(drop)
    }

    /// Deletes experiment `id` (MLflow keeps it, marked deleted, with its runs);
    /// `false` if it was already gone or deleted.
    pub fn delete_experiment(&self, id: &str, name: &str) -> Result<bool, Error> {
        let doing = format!("could not delete experiment `{name}` (id {id})");
        let answer = self.send(
            Request::post(&self.url("experiments/delete")).json(&json!({"experiment_id": id})),
            &doing,
        )?;
        if answer.status == 404 && error_code(&answer).as_deref() == Some("RESOURCE_DOES_NOT_EXIST")
        {
            return Ok(false);
        }
        self.expect(answer, &doing).map(|_| true)
    }

    /// Creates the run `body` (see [`run_request`]); its id.
    pub fn create_run(&self, body: &Value, experiment: &str) -> Result<String, Error> {
        let doing = format!("could not create a run in experiment `{experiment}`");
        let answer = self.post("runs/create", body, &doing)?;
        parse_run_id(&answer.body).map_err(|why| self.unexpected(&doing, &why))
    }

    /// Logs `params` on run `run_id`, a hundred per request.
    pub fn log_params(&self, run_id: &str, params: &[(String, String)]) -> Result<(), Error> {
        let doing = format!("could not log the runtime parameters on run {run_id}");
        for batch in batches(run_id, params) {
            self.post("runs/log-batch", &batch, &doing)?;
        }
        Ok(())
    }

    /// Marks run `run_id` `FAILED`, ended now.
    pub fn fail_run(&self, run_id: &str) -> Result<(), Error> {
        self.update_run(run_id, "FAILED")
    }

    /// The id of the newest active run of experiment `experiment_id` matching `filter`
    /// (see [`run_filter`]), or `None` if there is none.
    pub fn find_run(&self, experiment_id: &str, filter: &str) -> Result<Option<String>, Error> {
        let doing = format!("could not search experiment {experiment_id} for its run");
        let answer = self.post(
            "runs/search",
            &search_request(experiment_id, filter),
            &doing,
        )?;
        parse_run_ids(&answer.body)
            .map(|ids| ids.into_iter().next())
            .map_err(|why| self.unexpected(&doing, &why))
    }

    /// Sets run `run_id`'s `status` (`FINISHED`, `FAILED`, `KILLED`), ended now.
    pub fn update_run(&self, run_id: &str, status: &str) -> Result<(), Error> {
        let doing = format!("could not mark run {run_id} {status}");
        // `now_ms` reads `wasi:clocks/wall-clock` (through std) in the sandbox.
        let body = update_request(run_id, status, now_ms());
        self.post("runs/update", &body, &doing).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn experiments_parse_with_their_stage_and_tags() {
        let body = br#"{"experiment": {"experiment_id": "7", "name": "e",
            "artifact_location": "/a/7", "lifecycle_stage": "deleted",
            "tags": [{"key": "strata.component_id", "value": "c-1"}], "workspace": "default"}}"#;
        let e = parse_experiment(body).unwrap();
        assert_eq!(e.experiment_id, "7");
        assert!(!e.is_active());
        assert_eq!(e.stage(), "deleted");
        assert_eq!(e.tag(CREATOR_TAG), Some("c-1"));
        let bare =
            parse_experiment(br#"{"experiment": {"experiment_id": "1", "name": "e"}}"#).unwrap();
        assert!(bare.is_active() && bare.tags.is_empty());
        assert!(parse_experiment(b"<html>").is_err());
        assert!(parse_experiment(br#"{"experiments": []}"#).is_err());
    }

    #[test]
    fn mlflow_errors_read_as_code_and_message() {
        let body = br#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Could not find experiment with name 'x'"}"#;
        assert_eq!(
            error_message(body).unwrap(),
            "RESOURCE_DOES_NOT_EXIST: Could not find experiment with name 'x'"
        );
        assert_eq!(error_message(br#"{"message": "m"}"#).unwrap(), "m");
        assert_eq!(error_message(b"Invalid Host header"), None);
    }

    #[test]
    fn run_ids_come_from_run_info() {
        let body =
            br#"{"run": {"info": {"run_uuid": "u", "run_id": "abc", "experiment_id": "1"}}}"#;
        assert_eq!(parse_run_id(body).unwrap(), "abc");
        assert_eq!(
            parse_run_id(br#"{"run": {"info": {"run_uuid": "u"}}}"#).unwrap(),
            "u"
        );
        assert!(parse_run_id(br#"{"run": {}}"#).is_err());
    }

    #[test]
    fn a_run_is_named_after_its_pipeline_and_tagged_with_strata_s_keys() {
        assert_eq!(
            run_name(Some("training"), Some("0123456789abcdef")),
            "training-01234567"
        );
        assert_eq!(run_name(None, Some("ab")), "strata-ab");
        assert_eq!(run_name(Some("p"), None), "p");
        let runtime = pairs(&[
            ("lr", "0.1"),
            ("strata.run_id", "0123456789abcdef"),
            ("strata.pipeline", "training"),
            ("strata.stack", "dev"),
        ]);
        let body = run_request("4", &runtime, 1_700_000_000_000);
        assert_eq!(
            body,
            json!({
                "experiment_id": "4",
                "run_name": "training-01234567",
                "start_time": 1_700_000_000_000u64,
                "tags": [
                    {"key": "strata.run_id", "value": "0123456789abcdef"},
                    {"key": "strata.pipeline", "value": "training"},
                    {"key": "strata.stack", "value": "dev"},
                ],
            })
        );
    }

    #[test]
    fn params_are_the_user_s_pairs_once_each_a_hundred_per_batch() {
        let runtime = pairs(&[("a", "1"), ("strata.run_id", "r"), ("b", "2"), ("a", "3")]);
        assert_eq!(run_params(&runtime), pairs(&[("a", "1"), ("b", "2")]));
        let many: Vec<(String, String)> =
            (0..250).map(|i| (format!("k{i}"), i.to_string())).collect();
        let bodies = batches("r1", &many);
        assert_eq!(bodies.len(), 3);
        assert_eq!(bodies[0]["params"].as_array().unwrap().len(), 100);
        assert_eq!(bodies[2]["params"].as_array().unwrap().len(), 50);
        assert_eq!(
            bodies[2]["params"][0],
            json!({"key": "k200", "value": "200"})
        );
        assert_eq!(bodies[0]["run_id"], "r1");
        assert!(batches("r1", &[]).is_empty());
    }

    #[test]
    fn the_run_page_is_under_the_tracking_uri() {
        let server = Server {
            base: "http://127.0.0.1:5000".into(),
            connector: None,
        };
        assert_eq!(
            run_page(&server, "3", "abc"),
            "http://127.0.0.1:5000/#/experiments/3/runs/abc"
        );
    }

    #[test]
    fn a_strata_run_is_searched_by_its_tag_in_backticks() {
        assert_eq!(
            run_filter("0123456789abcdef").unwrap(),
            "tags.`strata.run_id` = '0123456789abcdef'"
        );
        for bad in ["", "a'b", "a\"b", "a`b", "a\\b", "a\nb"] {
            assert_eq!(run_filter(bad), None, "{bad:?}");
        }
        let body = search_request("4", "F");
        assert_eq!(body["experiment_ids"], json!(["4"]));
        assert_eq!(body["filter"], "F");
        assert_eq!(body["max_results"], 1);
    }

    #[test]
    fn searched_runs_parse_and_an_empty_answer_is_no_run() {
        let body = br#"{"runs": [{"info": {"run_id": "abc", "experiment_id": "4"},
            "data": {"tags": []}}], "next_page_token": "x"}"#;
        assert_eq!(parse_run_ids(body).unwrap(), ["abc"]);
        assert!(parse_run_ids(b"{}").unwrap().is_empty());
        assert!(parse_run_ids(br#"{"runs": []}"#).unwrap().is_empty());
        assert!(parse_run_ids(b"<html>").is_err());
        assert!(parse_run_ids(b"[]").is_err());
        assert!(parse_run_ids(br#"{"runs": [{"info": {}}]}"#).is_err());
    }

    #[test]
    fn statuses_map_onto_mlflow_s_and_the_end_time_is_sent_when_known() {
        assert_eq!(run_status("completed"), Some("FINISHED"));
        assert_eq!(run_status("failed"), Some("FAILED"));
        assert_eq!(run_status("cancelled"), Some("KILLED"));
        assert_eq!(run_status("interrupted"), None);
        assert_eq!(run_status("COMPLETED"), None);
        assert_eq!(
            update_request("r", "KILLED", 5),
            json!({"run_id": "r", "status": "KILLED", "end_time": 5})
        );
        assert_eq!(
            update_request("r", "KILLED", 0),
            json!({"run_id": "r", "status": "KILLED"})
        );
    }

    #[test]
    fn the_uri_a_step_sees_holds_no_credentials() {
        assert_eq!(public_uri("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(public_uri("https://host/mlflow"), "https://host/mlflow");
        assert_eq!(
            public_uri("https://u:p@host:8443/mlflow/?token=x#f"),
            "https://host:8443/mlflow"
        );
        assert_eq!(public_uri("http://a@b@host"), "http://host");
    }
}
