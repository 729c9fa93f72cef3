//! The lifecycle against a fake registry answering through `http::answer_with`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::json;
use strata_flavor_sdk::Context;
use strata_flavor_sdk::bindings::exports::strata::flavor::lifecycle::Guest;
use strata_flavor_sdk::http::{self, Request, Response};
use strata_flavor_sdk::log;

use super::OciRegistry as T;

const URL: &str = "http://127.0.0.1:5001";

#[derive(Default)]
struct Fake {
    repos: BTreeMap<String, Vec<String>>,
    /// The most repositories a catalog page holds, whatever `n` asks.
    cap: usize,
    /// Every request answers 401.
    locked: bool,
    /// `/v2/_catalog` answers this status.
    no_catalog: Option<u16>,
    /// Requests fail as a timeout.
    down: bool,
    seen: Vec<String>,
}

fn answer(
    status: u16,
    headers: &[(&str, String)],
    body: serde_json::Value,
) -> Result<Response, http::Error> {
    Ok(Response {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        body: body.to_string().into_bytes(),
    })
}

fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.replace("%2F", "/"))
    })
}

impl Fake {
    fn answer(&mut self, request: &Request) -> Result<Response, http::Error> {
        assert_eq!(request.method(), "GET");
        let path = request
            .url()
            .strip_prefix(URL)
            .expect("the registry")
            .to_string();
        self.seen.push(path.clone());
        if self.down {
            return Err(http::Error::Timeout);
        }
        if self.locked {
            return answer(
                401,
                &[("www-authenticate", r#"Basic realm="Registry Realm""#.into())],
                json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}),
            );
        }
        let (route, query) = path.split_once('?').unwrap_or((&path, ""));
        if route == "/v2/" {
            return answer(200, &[], json!({}));
        }
        if route == "/v2/_catalog" {
            if let Some(status) = self.no_catalog {
                return answer(status, &[], json!({"errors": [{"code": "UNSUPPORTED"}]}));
            }
            let n: usize = param(query, "n").map_or(1000, |n| n.parse().unwrap());
            let n = n.min(self.cap);
            let last = param(query, "last").unwrap_or_default();
            let after: Vec<&String> = self
                .repos
                .keys()
                .filter(|k| k.as_str() > last.as_str())
                .collect();
            let page: Vec<&String> = after.iter().take(n).copied().collect();
            let mut headers = Vec::new();
            if after.len() > page.len() {
                let last = page.last().unwrap().replace('/', "%2F");
                headers.push((
                    "link",
                    format!("</v2/_catalog?last={last}&n={n}>; rel=\"next\""),
                ));
            }
            return answer(200, &headers, json!({"repositories": page}));
        }
        let name = route
            .strip_prefix("/v2/")
            .and_then(|r| r.strip_suffix("/tags/list"))
            .expect("a tags list");
        match self.repos.get(name) {
            Some(tags) => answer(200, &[], json!({"name": name, "tags": tags})),
            None => answer(
                404,
                &[],
                json!({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}),
            ),
        }
    }
}

fn serve(repos: &[(&str, usize)]) -> Rc<RefCell<Fake>> {
    let fake = Rc::new(RefCell::new(Fake {
        repos: repos
            .iter()
            .map(|(name, tags)| {
                (
                    name.to_string(),
                    (0..*tags).map(|i| format!("v{i}")).collect(),
                )
            })
            .collect(),
        cap: 100,
        ..Fake::default()
    }));
    let answering = fake.clone();
    http::answer_with(move |request| answering.borrow_mut().answer(request));
    log::take();
    fake
}

fn ctx(config: &[(&str, &str)], state: &Option<Vec<u8>>) -> Context {
    Context {
        component_id: "c-1".into(),
        component_name: "reg".into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        state: state.clone(),
    }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const TEAM: &[(&str, &str)] = &[("uri", URL), ("namespace", "team")];

const REPOS: &[(&str, usize)] = &[
    ("other/x", 1),
    ("team", 1),
    ("team-b/y", 1),
    ("team/app", 3),
    ("team/db", 1),
    ("team/tools/lint", 0),
    ("zeta/z", 2),
];

#[test]
fn validate_checks_the_namespace_and_the_uri() {
    assert!(<T as Guest>::validate(pairs(TEAM)).is_ok());
    assert!(<T as Guest>::validate(pairs(&[("namespace", "team/ml/")])).is_ok());
    assert!(<T as Guest>::validate(pairs(&[("namespace", "")])).is_ok());
    let errors = <T as Guest>::validate(pairs(&[
        ("namespace", "Team"),
        ("uri", "https://u:p@r.example"),
    ]))
    .unwrap_err();
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_deref().unwrap()).collect();
    assert_eq!(fields, ["namespace", "uri"]);
    assert!(
        errors[0].message.contains("lower-case"),
        "{}",
        errors[0].message
    );
}

#[test]
fn up_creates_nothing_and_status_lists_the_namespace_s_repositories() {
    let fake = serve(REPOS);
    let before = <T as Guest>::status(ctx(TEAM, &None));
    assert!(!before.provisioned, "never brought up");
    fake.borrow_mut().seen.clear();
    let state = <T as Guest>::provision(ctx(TEAM, &None)).unwrap();
    let said = log::take();
    assert!(said[0].1.contains("strata creates nothing"), "{said:?}");
    assert_eq!(fake.borrow().seen, ["/v2/"]);
    let state = <T as Guest>::resume(ctx(TEAM, &state)).unwrap();
    fake.borrow_mut().seen.clear();
    let status = <T as Guest>::status(ctx(TEAM, &state));
    assert!(status.provisioned && status.running);
    assert_eq!(
        status.detail,
        "registry at http://127.0.0.1:5001 answers; 3 repositories under `team/`: team/app \
         (3 tags), team/db (1 tag), team/tools/lint (0 tags)"
    );
    // The listing starts after `team/` and stops past it.
    assert_eq!(
        fake.borrow().seen[..2],
        ["/v2/", "/v2/_catalog?n=100&last=team%2F"]
    );
    let state = <T as Guest>::suspend(ctx(TEAM, &state)).unwrap();
    assert!(!<T as Guest>::status(ctx(TEAM, &state)).running);
    fake.borrow_mut().seen.clear();
    let state = <T as Guest>::deprovision(ctx(TEAM, &state)).unwrap();
    assert!(
        fake.borrow().seen.is_empty(),
        "deprovision makes no request"
    );
    assert!(log::take()[0].1.starts_with("removed nothing"));
    assert!(!<T as Guest>::status(ctx(TEAM, &state)).provisioned);
}

#[test]
fn the_catalog_is_followed_page_by_page() {
    let fake = serve(REPOS);
    fake.borrow_mut().cap = 2;
    let whole = [("uri", URL)];
    let status = <T as Guest>::status(ctx(&whole, &None));
    assert!(
        status.detail.ends_with(
            "7 repositories: other/x (1 tag), team (1 tag), team-b/y (1 tag), team/app (3 tags), \
             team/db (1 tag), team/tools/lint (0 tags), zeta/z (2 tags)"
        ),
        "{}",
        status.detail
    );
    let catalog = fake
        .borrow()
        .seen
        .iter()
        .filter(|p| p.starts_with("/v2/_catalog"))
        .count();
    assert_eq!(catalog, 4);
    fake.borrow_mut().seen.clear();
    let status = <T as Guest>::status(ctx(TEAM, &None));
    assert!(
        status.detail.contains("3 repositories under `team/`"),
        "{}",
        status.detail
    );
}

#[test]
fn a_big_registry_stays_within_the_request_budget() {
    let many: Vec<(String, usize)> = (0..5000).map(|i| (format!("team/r{i:04}"), 2)).collect();
    let refs: Vec<(&str, usize)> = many.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let fake = serve(&refs);
    let status = <T as Guest>::status(ctx(TEAM, &None));
    assert!(
        status
            .detail
            .contains("at least 2000 repositories under `team/`: team/r0000 (2 tags)"),
        "{}",
        status.detail
    );
    assert!(
        status.detail.ends_with(", and 1990 more"),
        "{}",
        status.detail
    );
    assert!(
        fake.borrow().seen.len() <= 60,
        "{} requests",
        fake.borrow().seen.len()
    );
    assert_eq!(fake.borrow().seen.len(), 1 + 20 + 10);
}

#[test]
fn an_empty_namespace_and_a_registry_without_catalog_say_so() {
    let fake = serve(&[("other/x", 1)]);
    let status = <T as Guest>::status(ctx(TEAM, &None));
    assert!(
        status
            .detail
            .ends_with("; no repositories under `team/` yet"),
        "{}",
        status.detail
    );
    fake.borrow_mut().no_catalog = Some(404);
    let status = <T as Guest>::status(ctx(TEAM, &None));
    assert!(
        status.detail.ends_with("catalog not supported (GET /v2/_catalog answered 404): the registry does not list its repositories"),
        "{}",
        status.detail
    );
}

#[test]
fn refused_credentials_make_the_registry_unusable_with_a_way_forward() {
    let fake = serve(REPOS);
    fake.borrow_mut().locked = true;
    let err = <T as Guest>::provision(ctx(TEAM, &None)).unwrap_err();
    assert!(
        err.starts_with(
            "the registry at http://127.0.0.1:5001 refused the credentials (401; it asks for \
             Basic realm=\"Registry Realm\"): it wants a user or a token; bind a connector \
             with `--type basic`/`bearer`"
        ),
        "{err}"
    );
    let status = <T as Guest>::status(ctx(TEAM, &None));
    assert!(!status.provisioned);
    assert!(
        status.detail.starts_with("not usable: the registry at"),
        "{}",
        status.detail
    );
    let bound = [
        ("connector.name", "hub"),
        ("connector.type", "basic"),
        ("connector.endpoint", URL),
    ];
    let err = <T as Guest>::provision(ctx(&bound, &None)).unwrap_err();
    assert!(
        err.contains("refused the credentials of connector `hub` (401; it asks for Basic"),
        "{err}"
    );
    assert!(err.contains("strata service-connector verify hub"), "{err}");
}

#[test]
fn a_registry_that_does_not_answer_is_named_by_its_url() {
    let fake = serve(REPOS);
    fake.borrow_mut().down = true;
    let err = <T as Guest>::provision(ctx(TEAM, &None)).unwrap_err();
    assert!(
        err.starts_with(
            "could not check the registry (GET /v2/): no answer from http://127.0.0.1:5001 in \
             0.0 s (timed out): the registry may be down or hung"
        ),
        "{err}"
    );
    assert!(!err.contains('\n'));
    let status = <T as Guest>::status(ctx(TEAM, &None));
    assert!(!status.provisioned && status.detail == err);
}

#[test]
fn a_server_that_is_not_a_registry_is_refused() {
    let _fake = serve(REPOS);
    http::answer_with(|_| {
        Ok(Response {
            status: 404,
            headers: Vec::new(),
            body: b"<h1>Not Found</h1>".to_vec(),
        })
    });
    let err = <T as Guest>::provision(ctx(TEAM, &None)).unwrap_err();
    assert_eq!(
        err,
        "could not check the registry (GET /v2/): http://127.0.0.1:5001 answered HTTP 404: \
         <h1>Not Found</h1>; check that http://127.0.0.1:5001 is the registry's base URL (`uri`)"
    );
}

#[test]
fn the_connector_s_endpoint_is_the_registry() {
    let fake = serve(REPOS);
    let bound = [
        ("namespace", "team"),
        ("connector.name", "hub"),
        ("connector.type", "bearer"),
        ("connector.endpoint", "http://127.0.0.1:5001/"),
    ];
    <T as Guest>::provision(ctx(&bound, &None)).unwrap();
    assert_eq!(fake.borrow().seen, ["/v2/"]);
    let other = [&bound[..], &[("uri", "http://localhost:5001")]].concat();
    let err = <T as Guest>::provision(ctx(&other, &None)).unwrap_err();
    assert!(err.contains("is not on the origin of connector"), "{err}");
    let err = <T as Guest>::provision(ctx(&[("namespace", "team")], &None)).unwrap_err();
    assert!(err.starts_with("`reg` names no registry"), "{err}");
    assert!(err.contains("--uri=http://127.0.0.1:5000"), "{err}");
}
