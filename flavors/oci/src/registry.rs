//! The part of the OCI Distribution API (Docker Registry HTTP API v2) this flavor
//! uses: `GET /v2/` (is it a registry, are the credentials accepted), `GET
//! /v2/_catalog` (the repositories, page by page) and `GET /v2/NAME/tags/list`.
//!
//! Every request counts against a budget, so one call stays well within strata's 64
//! requests; what the budget cut short is reported as such, never as a whole answer.

use std::cell::Cell;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use strata_flavor_sdk::Error;
use strata_flavor_sdk::http::{Request, Response};

use strata_flavor_sdk::endpoint::{self, Server, Service};

/// The registry, as messages name it.
pub const SERVICE: Service = Service {
    field: "uri",
    what: "registry",
    command: "container-registry",
    example: "http://127.0.0.1:5000",
};

/// Requests one call may make: strata allows 64, a few are kept in hand.
pub const BUDGET: u32 = 60;

/// How long one call keeps listing: past it, no new request is made and what was found
/// is reported as partial, well before strata's deadline (10 s by default) even against
/// a registry slow to check a password (a bcrypt `htpasswd` takes some 250 ms a request).
pub const TIME_BUDGET: Duration = Duration::from_secs(5);

/// Catalog pages (of [`PAGE`] repositories) read at most in one call.
pub const MAX_CATALOG_PAGES: u32 = 20;

/// Repositories asked for per catalog page.
pub const PAGE: u32 = 100;

/// The registry's own words in an error body (`{"errors": [{"code", "message"}]}`):
/// `CODE: message`, each error's, joined by `; `.
pub fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<One>,
    }
    #[derive(Deserialize)]
    struct One {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let errors: Errors = serde_json::from_slice(body).ok()?;
    let said: Vec<String> = errors
        .errors
        .iter()
        .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
            (false, false) => format!("{}: {}", e.code, e.message),
            (false, true) => e.code.clone(),
            _ => e.message.clone(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    (!said.is_empty()).then(|| said.join("; "))
}

/// The target of the `rel="next"` link of a `Link` header, if there is one:
/// `</v2/_catalog?last=b&n=100>; rel="next"` gives `/v2/_catalog?last=b&n=100`.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        next.then(|| target.to_string())
    })
}

/// Where a `Link` target leads: an absolute path on the server's origin, or a whole
/// URL, which must be on that origin (no other is granted). `None` otherwise.
pub fn resolve_link(server: &Server, target: &str) -> Option<String> {
    if target.starts_with('/') {
        Some(format!("{}{target}", server.origin()))
    } else if target.contains("://") {
        (endpoint::normal_origin(target) == endpoint::normal_origin(&server.base))
            .then(|| target.to_string())
    } else {
        None
    }
}

/// The repositories of a catalog page.
pub fn parse_repositories(body: &[u8]) -> Result<Vec<String>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    match &value["repositories"] {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => Ok(items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()),
        _ => Err("no `repositories` list".into()),
    }
}

/// The number of tags of a `tags/list` page (`"tags": null` is none).
pub fn count_tags(body: &[u8]) -> Result<usize, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    match &value["tags"] {
        Value::Null => Ok(0),
        Value::Array(items) => Ok(items.len()),
        _ => Err("no `tags` list".into()),
    }
}

/// Whether `namespace` can be the start of repository names: `/`-separated components
/// of lower-case letters and digits, separated inside by `.`, `_`, `__` or dashes.
/// Why not, if not.
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    if namespace.len() > 200 {
        return Err(format!(
            "is {} characters long: a repository name takes at most 255, and images go below it",
            namespace.len()
        ));
    }
    for part in namespace.split('/') {
        if !valid_component(part) {
            let which = if part == namespace {
                String::new()
            } else {
                format!(" (`{part}` is not)")
            };
            return Err(format!(
                "is not a repository path{which}: each part between `/` must be lower-case \
                 letters and digits, separated by `.`, `_`, `__` or `-` (like `team/ml-models`)"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, the grammar of one path component.
fn valid_component(part: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = part.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &part[start..i];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(dashes || separator == "." || separator == "_" || separator == "__") {
            return false;
        }
    }
    true
}

/// The answer of `GET /v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ping {
    /// `200`: a registry, taking the requests as they are sent.
    Ok,
    /// `401`: it wants credentials (or refused the connector's), with the challenge of
    /// its `WWW-Authenticate` header.
    Unauthorized { challenge: Option<String> },
}

/// The repositories a catalog listing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Catalog {
    /// The repositories under the namespace, in the registry's order; `complete` if
    /// every page was read.
    Listed {
        repositories: Vec<String>,
        complete: bool,
    },
    /// The registry does not list its repositories to these credentials (`404`,
    /// `401`, `403`: Docker Hub, GHCR and others keep no public catalog).
    NotSupported { status: u16 },
}

/// A registry reached at `server`, with a budget of requests and of time.
pub struct Registry<'a> {
    pub server: &'a Server,
    left: Cell<u32>,
    started: Instant,
}

impl<'a> Registry<'a> {
    pub fn new(server: &'a Server) -> Self {
        Registry {
            server,
            left: Cell::new(BUDGET),
            started: Instant::now(),
        }
    }

    /// Sends a `GET` to `url` (if the budgets allow: `Ok(None)` otherwise); no answer
    /// is an error saying `doing`.
    fn get(&self, url: &str, doing: &str) -> Result<Option<Response>, Error> {
        if self.left.get() == 0 || self.started.elapsed() > TIME_BUDGET {
            return Ok(None);
        }
        self.left.set(self.left.get() - 1);
        let request = Request::get(url).header("accept", "application/json");
        endpoint::send(request, self.server, SERVICE, doing).map(Some)
    }

    fn refused(&self, answer: &Response, doing: &str) -> Error {
        endpoint::refused(answer, self.server, SERVICE, doing, error_message)
    }

    fn unexpected(&self, doing: &str, why: &str) -> Error {
        Error::new(format!("{doing}: {} answered {why}", self.server.base)).with_hint(format!(
            "check that `uri` ({}) is an OCI (Docker Registry v2) registry",
            self.server.base
        ))
    }

    /// `GET /v2/`: is the server a registry, and does it take these requests?
    pub fn ping(&self) -> Result<Ping, Error> {
        let doing = "could not check the registry (GET /v2/)";
        let answer = self
            .get(&self.server.url("/v2/"), doing)?
            .expect("the first request of a call is within the budget");
        match answer.status {
            200..=299 => Ok(Ping::Ok),
            401 => Ok(Ping::Unauthorized {
                challenge: answer
                    .header("www-authenticate")
                    .map(|c| endpoint::one_line(c, 200)),
            }),
            _ => Err(self.refused(&answer, doing)),
        }
    }

    /// The error of a `401` from `/v2/`: the registry refused these requests.
    pub fn unauthorized(&self, challenge: Option<&str>) -> Error {
        let asks = challenge.map_or(String::new(), |c| format!("; it asks for {c}"));
        match &self.server.connector {
            Some(name) => Error::new(format!(
                "the registry at {} refused the credentials of connector `{name}` (401{asks})",
                self.server.base
            ))
            .with_hint(format!(
                "check them with `strata service-connector verify {name}`, or bind a connector \
                 the registry accepts (`--type basic` or `bearer`)"
            )),
            None => Error::new(format!(
                "the registry at {} refused the credentials (401{asks}): it wants a user \
                 or a token",
                self.server.base
            ))
            .with_hint(format!(
                "bind a connector with `--type basic`/`bearer`: `strata service-connector \
                 register NAME --type basic --endpoint={} -i`, then `strata container-registry \
                 update COMPONENT --connector=NAME`",
                self.server.origin()
            )),
        }
    }

    /// The repositories under `namespace` (every one if it is empty), following the
    /// catalog's pages. With a namespace, the listing starts after `namespace/` and stops
    /// at the first name past it, as registries list names in lexical order.
    pub fn catalog(&self, namespace: &str) -> Result<Catalog, Error> {
        let doing = "could not list the repositories (GET /v2/_catalog)";
        let prefix = if namespace.is_empty() {
            String::new()
        } else {
            format!("{namespace}/")
        };
        let mut url = if prefix.is_empty() {
            self.server.url(&format!("/v2/_catalog?n={PAGE}"))
        } else {
            self.server.url(&format!(
                "/v2/_catalog?n={PAGE}&last={}",
                endpoint::encode(&prefix)
            ))
        };
        let mut repositories = Vec::new();
        for page in 0.. {
            if page == MAX_CATALOG_PAGES {
                return Ok(Catalog::Listed {
                    repositories,
                    complete: false,
                });
            }
            let Some(answer) = self.get(&url, doing)? else {
                return Ok(Catalog::Listed {
                    repositories,
                    complete: false,
                });
            };
            match answer.status {
                200..=299 => {}
                401 | 403 | 404 if page == 0 => {
                    return Ok(Catalog::NotSupported {
                        status: answer.status,
                    });
                }
                _ => return Err(self.refused(&answer, doing)),
            }
            let names =
                parse_repositories(&answer.body).map_err(|why| self.unexpected(doing, &why))?;
            let mut past = false;
            for name in names {
                if name.starts_with(&prefix) {
                    repositories.push(name);
                } else if !prefix.is_empty() && name.as_str() > prefix.as_str() {
                    past = true;
                }
            }
            let next = answer.header("link").and_then(next_link);
            match next {
                Some(target) if !past => match resolve_link(self.server, &target) {
                    Some(next) => url = next,
                    None => {
                        return Ok(Catalog::Listed {
                            repositories,
                            complete: false,
                        });
                    }
                },
                _ => break,
            }
        }
        Ok(Catalog::Listed {
            repositories,
            complete: true,
        })
    }

    /// The number of tags of repository `name`, following pages; `None` if the budget
    /// ran out first (or the repository vanished meanwhile: `Some(0)`).
    pub fn tags(&self, name: &str) -> Result<Option<usize>, Error> {
        let doing = format!("could not list the tags of `{name}` (GET /v2/{name}/tags/list)");
        let mut url = self.server.url(&format!("/v2/{name}/tags/list"));
        let mut count = 0;
        loop {
            let Some(answer) = self.get(&url, &doing)? else {
                return Ok(None);
            };
            if answer.status == 404 {
                return Ok(Some(count));
            }
            if !answer.is_success() {
                return Err(self.refused(&answer, &doing));
            }
            count += count_tags(&answer.body).map_err(|why| self.unexpected(&doing, &why))?;
            match answer.header("link").and_then(next_link) {
                Some(target) => match resolve_link(self.server, &target) {
                    Some(next) => url = next,
                    None => return Ok(None),
                },
                None => return Ok(Some(count)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_read_as_code_and_message() {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}"#;
        assert_eq!(
            error_message(body).unwrap(),
            "NAME_UNKNOWN: repository name not known to registry"
        );
        let two = br#"{"errors":[{"code":"UNAUTHORIZED"},{"message":"m"}]}"#;
        assert_eq!(error_message(two).unwrap(), "UNAUTHORIZED; m");
        assert_eq!(error_message(b"{}"), None);
        assert_eq!(error_message(br#"{"errors":[]}"#), None);
    }

    #[test]
    fn the_next_link_is_found_among_others() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=team%2Fapp&n=2>; rel="next""#).unwrap(),
            "/v2/_catalog?last=team%2Fapp&n=2"
        );
        assert_eq!(
            next_link(
                r#"<https://r.example/v2/x>; rel="prev", <https://r.example/v2/y>; rel=next"#
            )
            .unwrap(),
            "https://r.example/v2/y"
        );
        assert_eq!(next_link(r#"</v2/x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn links_are_followed_only_on_the_server_s_origin() {
        let server = Server {
            base: "http://127.0.0.1:5001".into(),
            connector: None,
        };
        assert_eq!(
            resolve_link(&server, "/v2/_catalog?last=a&n=2").unwrap(),
            "http://127.0.0.1:5001/v2/_catalog?last=a&n=2"
        );
        assert!(resolve_link(&server, "http://127.0.0.1:5001/v2/x").is_some());
        assert_eq!(resolve_link(&server, "http://evil.example/v2/x"), None);
        assert_eq!(resolve_link(&server, "v2/x"), None);
    }

    #[test]
    fn catalogs_and_tag_lists_parse() {
        assert_eq!(
            parse_repositories(br#"{"repositories":["a","b/c"]}"#).unwrap(),
            ["a", "b/c"]
        );
        assert!(
            parse_repositories(br#"{"repositories":null}"#)
                .unwrap()
                .is_empty()
        );
        assert!(parse_repositories(br#"{"repositories":3}"#).is_err());
        assert!(parse_repositories(b"<html>").is_err());
        assert_eq!(
            count_tags(br#"{"name":"a","tags":["v1","v2"]}"#).unwrap(),
            2
        );
        assert_eq!(count_tags(br#"{"name":"a","tags":null}"#).unwrap(), 0);
        assert!(count_tags(br#"{"tags":"v1"}"#).is_err());
    }

    #[test]
    fn namespaces_follow_the_repository_grammar() {
        for good in ["team", "team/ml-models", "a.b/c__d/e---f", "x9/0"] {
            assert!(check_namespace(good).is_ok(), "{good}");
        }
        for bad in [
            "Team", "team/", "/team", "a//b", "-a", "a_", "a___b", "a._b", "a b",
        ] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
        assert!(check_namespace(&"a".repeat(201)).is_err());
    }
}
