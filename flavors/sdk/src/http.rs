//! A small blocking HTTP client for flavors, over `wasi:http/outgoing-handler`.
//!
//! ```no_run
//! use strata_flavor_sdk::http::{self, Request};
//!
//! # fn main() -> Result<(), http::Error> {
//! let answer = Request::post("https://hooks.example/services/T0/B1/xyz")
//!     .json(&serde_json::json!({ "text": "strata: component alerts is up" }))
//!     .send()?;
//! if !answer.is_success() {
//!     eprintln!("the webhook answered {}: {}", answer.status, answer.text());
//! }
//! let models: serde_json::Value = http::get("https://registry.example/v1/models")?.json()?;
//! # Ok(()) }
//! ```
//!
//! # What strata lets through
//!
//! A flavor reaches only the origins (`scheme://host[:port]`) its component's
//! configuration grants: those of its `url` fields, of its service connector
//! (`connector.endpoint`), and the fixed `flavor-info.origins` the user accepted at
//! registration ([`Info::origin`](crate::Info::origin)). Anything else comes back as
//! [`Error::Denied`] before a byte is sent, and an address no flavor may reach (cloud
//! metadata, link-local, a private address the configuration did not name) as
//! [`Error::Prohibited`]. So the URLs a flavor requests come from its configuration:
//! `call.config.require("webhook")`, not a constant.
//!
//! `describe` and `validate` get no grants at all: every request they make is denied.
//! Check a credential in `status` instead.
//!
//! strata follows no redirect: a `3xx` is a [`Response`] like any other, and its
//! `location` a new request, checked again. Every request is bounded by the deadline of
//! the call that makes it ([`Error::Timeout`]), and a call may make at most 64 requests
//! and read at most 64 MiB of response bodies in all; strata logs each request (method,
//! origin, path, status, bytes, time) with the call.
//!
//! # How it works
//!
//! [`Request::send`] builds a `wasi:http` `outgoing-request` from the URL (split into
//! scheme, authority and path-with-query, the authority passed on exactly as written),
//! hands it to `outgoing-handler.handle`, writes the body (if any) through its output
//! stream as fast as it takes them (`check-write`), then blocks on the pollable of the
//! `future-incoming-response` until the answer's head arrives, and reads the whole body,
//! refusing more than [`Request::max_bytes`]. It is blocking because each lifecycle call
//! is: there is nothing else for the instance to do meanwhile. A flavor wanting the raw
//! interfaces (streaming a large upload, say) finds them in
//! [`bindings::wasi`](crate::bindings::wasi).
//!
//! Outside WebAssembly (a flavor's unit tests) there is no network: [`answer_with`]
//! installs a function that answers the requests made on the calling thread.

mod error;
mod url;

pub use error::Error;

use std::fmt;

use serde::de::DeserializeOwned;

/// The default of [`Request::max_bytes`]: 16 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// `Request::get(url).send()`: the body of `url`, or why there is none.
///
/// # Errors
/// Any [`Error`] of [`Request::send`].
pub fn get(url: &str) -> Result<Response, Error> {
    Request::get(url).send()
}

/// `scheme://host[:port]` of `url`, as written but without any `user:password@`: what
/// strata grants and refuses, for messages and logs. For a malformed URL, as much of it
/// as can be told.
///
/// ```
/// assert_eq!(
///     strata_flavor_sdk::http::origin("https://bot:s3cret@hooks.example:8443/T0/B1?x=1"),
///     "https://hooks.example:8443"
/// );
/// ```
pub fn origin(url: &str) -> String {
    url::origin_of(url)
}

/// One HTTP request, built by chaining, sent by [`Request::send`].
#[derive(Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    max_bytes: u64,
}

impl Request {
    /// A request with `method` (`GET`, `POST`, … or any other token) to `url`, which is
    /// `http://` or `https://`, an authority, then a path and query:
    /// `https://api.example:8443/v1/items?page=2`. The authority goes to strata exactly
    /// as written, userinfo included (strata refuses a request that carries one: put a
    /// credential in a header, or let a service connector add it). A fragment (`#…`) is
    /// never sent. A malformed URL fails in [`send`](Request::send), as [`Error::Url`].
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// A `GET` request to `url`.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    /// A `POST` request to `url`.
    pub fn post(url: &str) -> Request {
        Request::new("POST", url)
    }

    /// A `PUT` request to `url`.
    pub fn put(url: &str) -> Request {
        Request::new("PUT", url)
    }

    /// A `DELETE` request to `url`.
    pub fn delete(url: &str) -> Request {
        Request::new("DELETE", url)
    }

    /// A `HEAD` request to `url`: the answer has no body.
    pub fn head(url: &str) -> Request {
        Request::new("HEAD", url)
    }

    /// Adds the header `name: value` (after any others of that name). `content-length`
    /// is set from the body; `host` and the hop-by-hop headers (`connection`,
    /// `transfer-encoding`, …) are refused by `wasi:http`.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The body, sent with its `content-length`.
    #[must_use]
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Request {
        self.body = bytes.into();
        self
    }

    /// `value` as the JSON body, with `content-type: application/json` (replacing any
    /// `content-type` given before).
    #[must_use]
    pub fn json(mut self, value: &serde_json::Value) -> Request {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
        self.headers
            .push(("content-type".to_string(), "application/json".to_string()));
        self.body = value.to_string().into_bytes();
        self
    }

    /// The most bytes of response body [`send`](Request::send) reads before failing with
    /// [`Error::TooLarge`]; [`DEFAULT_MAX_BYTES`] (16 MiB) unless set.
    #[must_use]
    pub fn max_bytes(mut self, n: u64) -> Request {
        self.max_bytes = n;
        self
    }

    /// The method, as given.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers, in the order given (`json` adds `content-type`).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body (empty if none was given).
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Sends the request and waits for the whole answer, whatever its status.
    ///
    /// # Errors
    /// No answer: the URL is malformed ([`Error::Url`]), strata refused the origin
    /// ([`Error::Denied`], [`Error::Prohibited`]), it took too long ([`Error::Timeout`]),
    /// the body is too long ([`Error::TooLarge`]) or broke off ([`Error::Body`]), or
    /// `wasi:http` failed otherwise ([`Error::Http`]).
    pub fn send(self) -> Result<Response, Error> {
        #[cfg(target_arch = "wasm32")]
        {
            wasi::send(self)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native::send(self)
        }
    }
}

/// The method, the URL without userinfo, the header names and the body's length: header
/// values and userinfo may be credentials.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match url::Target::parse(&self.url) {
            Ok(target) => format!("{}{}", target.origin(), target.path_with_query),
            Err(_) => url::origin_of(&self.url),
        };
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &url)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// An answer: its status, headers and whole body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The status code: `200`, `404`, …
    pub status: u16,
    /// Every header, in the order received, with its name in lower case.
    pub headers: Vec<(String, String)>,
    /// The whole body (empty for `HEAD`).
    pub body: Vec<u8>,
}

impl Response {
    /// The value of the first header named `name` (in any case), if there is one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as text, with any invalid UTF-8 replaced by `�`.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, decoded into `T` (`serde_json::Value` for any JSON).
    ///
    /// # Errors
    /// [`Error::Body`], saying why the body is not the JSON expected.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::Body(format!("the answer is not the JSON expected: {e}")))
    }

    /// The status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Makes `responder` answer the requests sent on this thread, in place of the network
/// (which only exists in WebAssembly): for a flavor's unit tests. Without one, a request
/// fails with [`Error::Http`] saying so.
///
/// ```
/// use strata_flavor_sdk::http::{self, Request, Response};
///
/// http::answer_with(|request: &Request| {
///     assert_eq!(request.method(), "POST");
///     Ok(Response { status: 204, ..Response::default() })
/// });
/// let answer = Request::post("https://hooks.example/x").body("hi").send().unwrap();
/// assert_eq!(answer.status, 204);
/// ```
#[cfg(not(target_arch = "wasm32"))]
pub fn answer_with(responder: impl Fn(&Request) -> Result<Response, Error> + 'static) {
    native::RESPONDER.with(|r| *r.borrow_mut() = Some(Box::new(responder)));
}

/// The requests of unit tests, answered by [`answer_with`].
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::{Error, Request, Response, url};
    use std::cell::RefCell;

    type Responder = Box<dyn Fn(&Request) -> Result<Response, Error>>;

    thread_local! {
        pub(super) static RESPONDER: RefCell<Option<Responder>> = const { RefCell::new(None) };
    }

    pub(super) fn send(request: Request) -> Result<Response, Error> {
        url::Target::parse(&request.url)?;
        let answer = RESPONDER.with(|r| r.borrow().as_ref().map(|answer| answer(&request)));
        let response = answer.unwrap_or_else(|| {
            Err(Error::Http(
                "no network outside WebAssembly: a unit test answers requests with \
                 `strata_flavor_sdk::http::answer_with`"
                    .to_string(),
            ))
        })?;
        if response.body.len() as u64 > request.max_bytes {
            return Err(Error::TooLarge {
                limit: request.max_bytes,
            });
        }
        Ok(response)
    }
}

/// The requests of a flavor, through `wasi:http`.
#[cfg(target_arch = "wasm32")]
mod wasi {
    use super::{Error, Request, Response, url::Target};
    use crate::bindings::wasi::http::outgoing_handler;
    use crate::bindings::wasi::http::types::{
        ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
        OutgoingBody, OutgoingRequest, Scheme,
    };
    use crate::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};

    /// The most bytes asked of one read.
    const READ_CHUNK: u64 = 1024 * 1024;

    pub(super) fn send(request: Request) -> Result<Response, Error> {
        let target = Target::parse(&request.url)?;
        let origin = target.origin();
        let outgoing = outgoing(&request, &target)?;
        // The body is taken before the request is handed over (which consumes it), and
        // written after, while strata sends: a large body never waits in a buffer.
        let body =
            if request.body.is_empty() {
                None
            } else {
                Some(outgoing.body().map_err(|()| {
                    Error::Body("wasi:http gave no body for the request".to_string())
                })?)
            };
        let future = outgoing_handler::handle(outgoing, None)
            .map_err(|code| Error::from_code(code, &origin))?;
        let written = match body {
            Some(body) => write_body(body, &request.body, &origin),
            None => Ok(()),
        };
        // A server may answer before the body is all sent (a 413, say): its answer says
        // more than the broken write.
        let head = match (wait(&future, &origin), written) {
            (Ok(head), _) => head,
            (Err(err), Ok(())) => return Err(err),
            (Err(_), Err(write)) => return Err(write),
        };
        let status = head.status();
        let headers = {
            let fields = head.headers();
            fields
                .entries()
                .into_iter()
                .map(|(name, value)| {
                    (
                        name.to_ascii_lowercase(),
                        String::from_utf8_lossy(&value).into_owned(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let limit = request.max_bytes;
        let announced = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .and_then(|(_, value)| value.trim().parse::<u64>().ok());
        // A HEAD's `content-length` is the size of what a GET would answer: it has no
        // body to refuse.
        let head_only = request.method.eq_ignore_ascii_case("HEAD");
        if !head_only && announced.is_some_and(|length| length > limit) {
            return Err(Error::TooLarge { limit });
        }
        let expected = if head_only { 0 } else { announced.unwrap_or(0) };
        let body = read_body(head, limit, expected, &origin)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// The `outgoing-request` for `request`, headers, method and URL set.
    fn outgoing(request: &Request, target: &Target<'_>) -> Result<OutgoingRequest, Error> {
        let fields = Fields::new();
        let mut headers = request.headers.clone();
        let has_length = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
        if !request.body.is_empty() && !has_length {
            headers.push(("content-length".to_string(), request.body.len().to_string()));
        }
        for (name, value) in &headers {
            fields.append(name, value.as_bytes()).map_err(|refused| {
                Error::Http(format!("the header `{name}` was refused: {refused:?}"))
            })?;
        }
        let outgoing = OutgoingRequest::new(fields);
        let method = method(&request.method);
        outgoing
            .set_method(&method)
            .map_err(|()| Error::Http(format!("the method `{}` was refused", request.method)))?;
        let scheme = if target.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| Error::Url(format!("`{}`: the scheme was refused", request.url)))?;
        outgoing
            .set_authority(Some(target.authority))
            .map_err(|()| {
                Error::Url(format!(
                    "`{}`: `{}` is not a valid host and port",
                    target.origin(),
                    target
                        .authority
                        .rsplit_once('@')
                        .map_or(target.authority, |(_, h)| h)
                ))
            })?;
        outgoing
            .set_path_with_query(Some(&target.path_with_query))
            .map_err(|()| {
                Error::Url(format!(
                    "`{}{}`: the path or query is malformed",
                    target.origin(),
                    target.path_with_query
                ))
            })?;
        Ok(outgoing)
    }

    /// `wasi:http`'s `method` for `name`: a standard one in any case, or `other`.
    fn method(name: &str) -> Method {
        match name.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "CONNECT" => Method::Connect,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "PATCH" => Method::Patch,
            _ => Method::Other(name.to_string()),
        }
    }

    /// Writes `bytes` into `body` as fast as the stream takes them (as much as
    /// `check-write` permits each time, waiting on its pollable when it permits none),
    /// flushes once, then finishes the body.
    fn write_body(body: OutgoingBody, bytes: &[u8], origin: &str) -> Result<(), Error> {
        {
            let stream: OutputStream = body.write().map_err(|()| {
                Error::Body("wasi:http gave no stream to write the body".to_string())
            })?;
            let failed = |e| stream_error(e, "writing the body", origin);
            let mut rest = bytes;
            while !rest.is_empty() {
                let permit = stream.check_write().map_err(failed)?;
                if permit == 0 {
                    stream.subscribe().block();
                    continue;
                }
                let n = usize::try_from(permit)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                stream.write(&rest[..n]).map_err(failed)?;
                rest = &rest[n..];
            }
            stream.blocking_flush().map_err(failed)?;
            // The stream is a child of the body: it goes before the body is finished.
        }
        OutgoingBody::finish(body, None).map_err(|code| Error::from_code(code, origin))
    }

    /// Blocks until the head of the answer arrives.
    fn wait(future: &FutureIncomingResponse, origin: &str) -> Result<IncomingResponse, Error> {
        loop {
            match future.get() {
                Some(Ok(Ok(head))) => return Ok(head),
                Some(Ok(Err(code))) => return Err(Error::from_code(code, origin)),
                Some(Err(())) => {
                    return Err(Error::Http("the answer was already taken".to_string()));
                }
                None => future.subscribe().block(),
            }
        }
    }

    /// Reads the whole body of `head`, at most `limit` bytes.
    /// `announced`: the `content-length`, room made for at once (within `limit`).
    fn read_body(
        head: IncomingResponse,
        limit: u64,
        announced: u64,
        origin: &str,
    ) -> Result<Vec<u8>, Error> {
        let incoming: IncomingBody = head
            .consume()
            .map_err(|()| Error::Body("wasi:http gave no body for the answer".to_string()))?;
        let mut body = Vec::with_capacity(usize::try_from(announced.min(limit)).unwrap_or(0));
        {
            let stream: InputStream = incoming.stream().map_err(|()| {
                Error::Body("wasi:http gave no stream to read the answer".to_string())
            })?;
            loop {
                // One byte past the limit tells a body of exactly `limit` bytes from a
                // longer one.
                let room = (limit + 1).saturating_sub(body.len() as u64);
                match stream.blocking_read(room.clamp(1, READ_CHUNK)) {
                    Ok(chunk) => body.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(e) => return Err(stream_error(e, "reading the answer", origin)),
                }
                if body.len() as u64 > limit {
                    return Err(Error::TooLarge { limit });
                }
            }
        }
        // Trailers are not read; dropping the future discards them.
        drop(IncomingBody::finish(incoming));
        Ok(body)
    }

    /// The error for a failed stream operation: the `error-code` behind it if
    /// `wasi:http` says which, or the stream's own text.
    fn stream_error(err: StreamError, doing: &str, origin: &str) -> Error {
        match err {
            StreamError::Closed => Error::Body(format!("{origin} closed the connection {doing}")),
            StreamError::LastOperationFailed(failure) => {
                match crate::bindings::wasi::http::types::http_error_code(&failure) {
                    Some(
                        code @ (ErrorCode::HttpRequestDenied
                        | ErrorCode::DestinationIpProhibited
                        | ErrorCode::ConnectionTimeout
                        | ErrorCode::ConnectionReadTimeout
                        | ErrorCode::ConnectionWriteTimeout
                        | ErrorCode::HttpResponseTimeout),
                    ) => Error::from_code(code, origin),
                    Some(code) => Error::Body(format!("{doing}: {code:?}")),
                    None => Error::Body(format!("{doing}: {}", failure.to_debug_string())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builders_set_method_headers_body_and_limit() {
        let r = Request::put("https://a.example/x")
            .header("x-one", "1")
            .body("hello")
            .max_bytes(10);
        assert_eq!(r.method(), "PUT");
        assert_eq!(r.url(), "https://a.example/x");
        assert_eq!(r.headers(), [("x-one".to_string(), "1".to_string())]);
        assert_eq!(r.body_bytes(), b"hello");
        assert_eq!(r.max_bytes, 10);
        for (r, method) in [
            (Request::get("u"), "GET"),
            (Request::post("u"), "POST"),
            (Request::delete("u"), "DELETE"),
            (Request::head("u"), "HEAD"),
        ] {
            assert_eq!(r.method(), method);
            assert_eq!(r.max_bytes, DEFAULT_MAX_BYTES);
        }
    }

    #[test]
    fn json_sets_the_body_and_one_content_type() {
        let r = Request::post("https://a.example/")
            .header("Content-Type", "text/plain")
            .header("x-keep", "yes")
            .json(&serde_json::json!({"text": "hi"}));
        assert_eq!(r.body_bytes(), br#"{"text":"hi"}"#);
        assert_eq!(
            r.headers(),
            [
                ("x-keep".to_string(), "yes".to_string()),
                ("content-type".to_string(), "application/json".to_string())
            ]
        );
    }

    #[test]
    fn debug_shows_no_header_value_and_no_userinfo() {
        let r = Request::get("https://user:hunter2@a.example/p?q=1")
            .header("authorization", "Bearer hunter2");
        let shown = format!("{r:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("https://a.example/p?q=1"), "{shown}");
        assert!(shown.contains("authorization"), "{shown}");
    }

    #[test]
    fn a_response_reads_headers_in_any_case_text_and_json() {
        let r = Response {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"ok": true}"#.to_vec(),
        };
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.header("x-missing"), None);
        assert!(r.is_success());
        assert_eq!(r.text(), r#"{"ok": true}"#);
        let v: serde_json::Value = r.json().unwrap();
        assert_eq!(v["ok"], true);
        let err = r.json::<Vec<u8>>().unwrap_err();
        assert!(matches!(err, Error::Body(_)), "{err:?}");
        for (status, success) in [
            (199, false),
            (200, true),
            (299, true),
            (301, false),
            (404, false),
        ] {
            assert_eq!(
                Response {
                    status,
                    ..Response::default()
                }
                .is_success(),
                success
            );
        }
    }

    #[test]
    fn a_unit_test_answers_requests_and_the_limit_holds() {
        answer_with(|request| {
            Ok(Response {
                status: 200,
                headers: vec![],
                body: request.body_bytes().to_vec(),
            })
        });
        let echoed = Request::post("http://127.0.0.1:9/")
            .body("12345")
            .send()
            .unwrap();
        assert_eq!(echoed.body, b"12345");
        let err = Request::post("http://127.0.0.1:9/")
            .body("12345")
            .max_bytes(4)
            .send()
            .unwrap_err();
        assert_eq!(err, Error::TooLarge { limit: 4 });
        let err = get("ftp://127.0.0.1/").unwrap_err();
        assert!(matches!(err, Error::Url(_)), "{err:?}");
    }

    #[test]
    fn without_an_answer_a_unit_test_gets_an_error_not_a_panic() {
        let err = get("https://a.example/").unwrap_err();
        assert!(err.to_string().contains("answer_with"), "{err}");
    }
}
