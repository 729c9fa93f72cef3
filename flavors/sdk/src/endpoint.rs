//! Where the server is, and how a request that failed becomes one line for the user.
//!
//! For a flavor that talks to one server, as strata's `mlflow` and `oci` do.
//!
//! A component names its server in two ways: a `url` field, or the endpoint of the
//! service connector it is bound to (`connector.endpoint`, whose credentials strata adds
//! to every request to that origin). With both, they must be the same origin: otherwise
//! the credentials would go to one server and the requests to another.

use std::time::{Duration, Instant};

use crate::http::{self, Response};
use crate::{Config, Error, Problems};

/// What a flavor says about the service it talks to, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// The `url` field that names the server: `tracking_uri`, `uri`.
    pub field: &'static str,
    /// The server as a person calls it: `MLflow server`, `registry`.
    pub what: &'static str,
    /// The component type as the command line spells it: `experiment-tracker`.
    pub command: &'static str,
    /// A URL to show in examples: `http://127.0.0.1:5000`.
    pub example: &'static str,
}

/// The server of one component, as a call uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The base URL, without a trailing `/`: `http://127.0.0.1:5000`, `https://host/mlflow`.
    pub base: String,
    /// The service connector bound to the component, if any: strata adds its credentials
    /// to every request to its endpoint.
    pub connector: Option<String>,
}

impl Server {
    /// `base` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `scheme://host[:port]` of the server.
    pub fn origin(&self) -> String {
        http::origin(&self.base)
    }
}

/// Reads the server of a component from its `url` field and its connector, recording
/// in `problems` a malformed `url` field or a connector on another origin. `None` (with
/// no problem) when neither is given: `validate` never sees the connector, so a missing
/// server is an error of each call instead ([`require`]).
pub fn read(config: &Config<'_>, service: Service, problems: &mut Problems) -> Option<Server> {
    let field = service.field;
    let given = config
        .get(field)
        .map(str::trim)
        .filter(|value| !value.is_empty());
    if let Some(url) = given
        && let Err(why) = check_url(url)
    {
        problems.field(field, format!("`{url}` {why}"));
        return None;
    }
    let endpoint = config
        .get("connector.endpoint")
        .map(str::trim)
        .filter(|value| !value.is_empty());
    let connector = endpoint.map(|_| config.get("connector.name").unwrap_or("?").to_string());
    if let (Some(url), Some(endpoint)) = (given, endpoint)
        && normal_origin(url) != normal_origin(endpoint)
    {
        let name = connector.as_deref().unwrap_or("?");
        problems.field(
            field,
            format!(
                "`{url}` is not on the origin of connector `{name}` ({}), so the \
                 connector's credentials would not reach it: give a URL on {0}, or remove \
                 `{field}` (`strata {} remove-attribute COMPONENT {field}`) to use the \
                 connector's endpoint",
                http::origin(endpoint),
                service.command,
            ),
        );
        return None;
    }
    let base = given.or(endpoint)?;
    Some(Server {
        base: base.trim_end_matches('/').to_string(),
        connector,
    })
}

/// The server of `settings`, or the error of a component that names none.
///
/// # Errors
/// Neither the `url` field nor a connector gives a server.
pub fn require<'s>(
    server: Option<&'s Server>,
    service: Service,
    component: &str,
) -> Result<&'s Server, Error> {
    server.ok_or_else(|| {
        Error::new(format!(
            "`{component}` names no {}: neither `{}` is set nor a service connector bound",
            service.what, service.field
        ))
        .with_hint(format!(
            "set it with `strata {} update {component} --{}={}`, or bind a connector that \
             holds the credentials with `--connector=NAME`",
            service.command, service.field, service.example
        ))
    })
}

/// Why `url` cannot name a server, if it cannot: strata has checked it is `http(s)://`
/// with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Err("is not an http:// or https:// URL".into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(
            "holds a user name or password: strata never sends those; keep credentials in a \
             service connector (`strata service-connector register NAME --type basic …`) and \
             bind it with `--connector=NAME`"
                .into(),
        );
    }
    if rest.contains(['?', '#']) {
        return Err("has a query or fragment: give the server's base URL only".into());
    }
    Ok(())
}

/// `scheme://host:port` of `url`, in lower case and with the port always written, so
/// that two spellings of one origin compare equal.
pub fn normal_origin(url: &str) -> String {
    let origin = http::origin(url).to_ascii_lowercase();
    let (scheme, host) = origin.split_once("://").unwrap_or(("", origin.as_str()));
    let has_port = host.rsplit_once(':').is_some_and(|(before, port)| {
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !before.ends_with(':')
    }) && !host.ends_with(']');
    if has_port {
        origin
    } else {
        let port = if scheme == "https" { 443 } else { 80 };
        format!("{scheme}://{host}:{port}")
    }
}

/// `value` percent-encoded for a query string: everything but `A-Z a-z 0-9 - . _ ~`.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `text` on one line (every run of white space one space), at most `max` characters
/// (then `…`): for a server's message inside ours.
pub fn one_line(text: &str, max: usize) -> String {
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match words.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &words[..at]),
        None => words,
    }
}

/// Sends `request` and waits for the answer, whatever its status; no answer at all is
/// the error [`unreachable`] words, saying `doing`.
///
/// # Errors
/// The request got no answer.
pub fn send(
    request: http::Request,
    server: &Server,
    service: Service,
    doing: &str,
) -> Result<Response, Error> {
    let started = Instant::now();
    request
        .send()
        .map_err(|err| unreachable(&err, started.elapsed(), server, service, doing))
}

/// A wait this long before a request fails means the server took the connection and
/// never answered (strata cuts a request at the call's deadline, which may come as a
/// broken connection rather than a timeout).
const HUNG: Duration = Duration::from_secs(2);

/// The error of a request that got no answer after `waited`: `doing` (`could not
/// create experiment `x``) and what happened; a refused connection, a timeout or a
/// long wait says the server may be down, naming its URL.
pub fn unreachable(
    err: &http::Error,
    waited: Duration,
    server: &Server,
    service: Service,
    doing: &str,
) -> Error {
    let fix = format!(
        "check that the {} is running at {}, or fix `{}` (or the connector's endpoint)",
        service.what, server.base, service.field
    );
    let silent = |why: &str| {
        Error::new(format!(
            "{doing}: no answer from {} in {:.1} s ({why}): the {} may be down or hung",
            server.base,
            waited.as_secs_f64(),
            service.what
        ))
        .with_hint(format!(
            "{fix}; a slow server may need a longer deadline per call (`strata {} update \
             COMPONENT --timeout-ms 30000`)",
            service.command
        ))
    };
    match err {
        http::Error::Timeout => silent("timed out"),
        http::Error::Http(code) => {
            let why = code.trim_start_matches("ErrorCode::");
            let down = [
                "ConnectionRefused",
                "ConnectionTerminated",
                "ConnectionReset",
                "ConnectionLimitReached",
                "DnsTimeout",
                "DnsError",
                "DestinationNotFound",
                "DestinationUnavailable",
            ]
            .iter()
            .any(|kind| why.starts_with(kind));
            if down {
                Error::new(format!(
                    "{doing}: could not connect to {} ({why}): the {} may be down",
                    server.base, service.what
                ))
                .with_hint(fix)
            } else if waited >= HUNG {
                silent(why)
            } else {
                Error::new(format!(
                    "{doing}: the request to {} failed ({why}): is it an HTTP server?",
                    server.base
                ))
                .with_hint(fix)
            }
        }
        other => Error::new(format!("{doing}: {other}")),
    }
}

/// The error of an answer that is not the one expected: `doing`, the status, and the
/// server's own message as `message_of` reads it from the body (else the body's text,
/// cut short), with a hint by status.
pub fn refused(
    answer: &Response,
    server: &Server,
    service: Service,
    doing: &str,
    message_of: fn(&[u8]) -> Option<String>,
) -> Error {
    let said = message_of(&answer.body)
        .map(|m| one_line(&m, 300))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| one_line(&answer.text(), 200));
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    let message = format!(
        "{doing}: {} answered HTTP {}{said}",
        server.origin(),
        answer.status
    );
    let hint = match answer.status {
        401 | 403 => match &server.connector {
            Some(name) => format!(
                "the {} refused the credentials of connector `{name}`: check them with \
                 `strata service-connector verify {name}`",
                service.what
            ),
            None => format!(
                "the {} wants credentials: register a connector (`strata service-connector \
                 register NAME --type basic|bearer --endpoint={} …`) and bind it with \
                 `--connector=NAME`",
                service.what,
                server.origin()
            ),
        },
        404 => format!(
            "check that {} is the {}'s base URL (`{}`)",
            server.base, service.what, service.field
        ),
        500..=599 => format!("the {} failed: see its log", service.what),
        _ => String::new(),
    };
    if hint.is_empty() {
        Error::new(message)
    } else {
        Error::new(message).with_hint(hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: Service = Service {
        field: "url",
        what: "server",
        command: "experiment-tracker",
        example: "http://127.0.0.1:5000",
    };

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn read_pairs(items: &[(&str, &str)]) -> (Option<Server>, Vec<String>) {
        let p = pairs(items);
        let mut problems = Problems::new();
        let server = read(&Config::new(&p), SERVICE, &mut problems);
        let said = problems
            .into_result()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.message)
            .collect();
        (server, said)
    }

    #[test]
    fn the_url_field_or_the_connector_names_the_server() {
        let (server, said) = read_pairs(&[("url", "http://127.0.0.1:5000/")]);
        assert!(said.is_empty());
        assert_eq!(
            server,
            Some(Server {
                base: "http://127.0.0.1:5000".into(),
                connector: None
            })
        );
        let (server, _) = read_pairs(&[
            ("connector.name", "ml"),
            ("connector.type", "bearer"),
            ("connector.endpoint", "https://ml.example"),
        ]);
        assert_eq!(
            server,
            Some(Server {
                base: "https://ml.example".into(),
                connector: Some("ml".into())
            })
        );
        // Both, on one origin however spelled: the field (with its path) wins.
        let (server, said) = read_pairs(&[
            ("url", "https://ML.example:443/mlflow"),
            ("connector.name", "ml"),
            ("connector.endpoint", "https://ml.example"),
        ]);
        assert!(said.is_empty(), "{said:?}");
        assert_eq!(server.unwrap().base, "https://ML.example:443/mlflow");
        let (server, said) = read_pairs(&[("url", "  ")]);
        assert!(server.is_none() && said.is_empty());
    }

    #[test]
    fn a_connector_on_another_origin_is_refused_naming_both() {
        let (server, said) = read_pairs(&[
            ("url", "http://127.0.0.1:5000"),
            ("connector.name", "ml"),
            ("connector.endpoint", "http://127.0.0.1:5001"),
        ]);
        assert!(server.is_none());
        assert_eq!(said.len(), 1);
        assert!(
            said[0].starts_with(
                "`http://127.0.0.1:5000` is not on the origin of connector `ml` \
                 (http://127.0.0.1:5001)"
            ),
            "{}",
            said[0]
        );
        assert!(!said[0].contains('\n'));
    }

    #[test]
    fn credentials_queries_and_fragments_are_refused_in_the_url() {
        let (_, said) = read_pairs(&[("url", "http://bob:pw@127.0.0.1:5000")]);
        assert!(said[0].contains("user name or password"), "{said:?}");
        let (_, said) = read_pairs(&[("url", "http://127.0.0.1:5000/?x=1")]);
        assert!(said[0].contains("query"), "{said:?}");
        assert!(check_url("https://a.example/base/path").is_ok());
    }

    #[test]
    fn require_says_how_to_name_a_server() {
        let err = require(None, SERVICE, "exp").unwrap_err().to_string();
        assert!(err.contains("`exp` names no server"), "{err}");
        assert!(err.contains("--url=http://127.0.0.1:5000"), "{err}");
        assert!(err.contains("--connector=NAME"), "{err}");
    }

    #[test]
    fn origins_compare_whatever_the_spelling() {
        assert_eq!(normal_origin("http://A.example"), "http://a.example:80");
        assert_eq!(
            normal_origin("http://a.example:80/x"),
            "http://a.example:80"
        );
        assert_eq!(
            normal_origin("https://a.example/x"),
            "https://a.example:443"
        );
        assert_eq!(normal_origin("https://[::1]/x"), "https://[::1]:443");
        assert_eq!(normal_origin("https://[::1]:8443/x"), "https://[::1]:8443");
        assert_ne!(
            normal_origin("http://a.example"),
            normal_origin("https://a.example")
        );
    }

    #[test]
    fn encoding_and_one_line() {
        assert_eq!(encode("my exp/1&x=ü"), "my%20exp%2F1%26x%3D%C3%BC");
        assert_eq!(encode("a-b_c.d~"), "a-b_c.d~");
        assert_eq!(one_line(" a\n b\t\tc ", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }

    fn server() -> Server {
        Server {
            base: "http://127.0.0.1:5000".into(),
            connector: None,
        }
    }

    #[test]
    fn a_server_that_is_down_is_named_with_its_url() {
        let refused = http::Error::Http("ErrorCode::ConnectionRefused".into());
        let err = unreachable(
            &refused,
            Duration::ZERO,
            &server(),
            SERVICE,
            "could not look up x",
        )
        .to_string();
        assert!(
            err.starts_with(
                "could not look up x: could not connect to http://127.0.0.1:5000 \
                 (ConnectionRefused): the server may be down; check that the server is running"
            ),
            "{err}"
        );
        let waited = Duration::from_millis(9_900);
        let err =
            unreachable(&http::Error::Timeout, waited, &server(), SERVICE, "doing").to_string();
        assert!(
            err.starts_with(
                "doing: no answer from http://127.0.0.1:5000 in 9.9 s (timed out): the server may \
                 be down or hung"
            ),
            "{err}"
        );
        assert!(!err.contains('\n'));
        // strata cuts a request at the call's deadline with a broken connection.
        let cut = http::Error::Http("ErrorCode::HttpProtocolError".into());
        let err = unreachable(&cut, waited, &server(), SERVICE, "doing").to_string();
        assert!(
            err.contains("in 9.9 s (HttpProtocolError): the server may be down or hung"),
            "{err}"
        );
        let err = unreachable(&cut, Duration::ZERO, &server(), SERVICE, "doing").to_string();
        assert!(
            err.contains("failed (HttpProtocolError): is it an HTTP server?"),
            "{err}"
        );
    }

    #[test]
    fn a_refusal_quotes_the_server_on_one_line_with_a_hint_by_status() {
        fn message(body: &[u8]) -> Option<String> {
            let v: serde_json::Value = serde_json::from_slice(body).ok()?;
            v["message"].as_str().map(str::to_string)
        }
        let answer = Response {
            status: 400,
            headers: Vec::new(),
            body: br#"{"message": "bad\nthing"}"#.to_vec(),
        };
        let err = refused(&answer, &server(), SERVICE, "could not x", message).to_string();
        assert_eq!(
            err,
            "could not x: http://127.0.0.1:5000 answered HTTP 400: bad thing"
        );
        let html = Response {
            status: 404,
            headers: Vec::new(),
            body: b"<h1>Not\nFound</h1>".to_vec(),
        };
        let err = refused(&html, &server(), SERVICE, "could not x", message).to_string();
        assert!(
            err.contains("HTTP 404: <h1>Not Found</h1>; check that"),
            "{err}"
        );
        let denied = Response {
            status: 401,
            ..Response::default()
        };
        let err = refused(&denied, &server(), SERVICE, "could not x", message).to_string();
        assert!(
            err.contains("HTTP 401; the server wants credentials"),
            "{err}"
        );
        let with = Server {
            connector: Some("ml".into()),
            ..server()
        };
        let err = refused(&denied, &with, SERVICE, "could not x", message).to_string();
        assert!(err.contains("service-connector verify ml"), "{err}");
    }
}
