//! The S3 requests: URLs in path style (`{endpoint}/{bucket}/{key}`), the headers every
//! request carries, the sandbox's per-call budget, and one-line messages for every
//! failure.
//!
//! Nothing here signs: strata's network gate adds the AWS Signature Version 4 of the
//! component's `aws` service connector to every request for the connector's endpoint,
//! after the flavor built it. Every request says `x-amz-content-sha256:
//! UNSIGNED-PAYLOAD`, which the gate signs as it is: bodies are never hashed in the
//! sandbox.

use std::cell::Cell;

use strata_flavor_sdk::http::{self, Request, Response};

use crate::codec::{encode_key, encode_query};
use crate::settings::Connector;
use crate::xml::{self, S3ErrorBody};

/// The most requests strata lets one call make.
pub const MAX_REQUESTS: u32 = 64;
/// The most bytes of response bodies strata lets one call read.
pub const MAX_RECEIVED: u64 = 64 * 1024 * 1024;
/// The most bytes read of an answer that is not an object's contents (XML, a marker).
pub const SMALL_ANSWER: u64 = 8 * 1024 * 1024;

/// A `HEAD` request to `url`. Its answer has no body, but its `content-length` is the
/// size of the object: the SDK compares that with the request's `max_bytes`, so the
/// limit is lifted (the gate still bounds every body a call reads).
pub fn head(url: &str) -> Request {
    Request::head(url).max_bytes(u64::MAX / 2)
}

/// The client of one call: one component, one bucket, the call's budget.
pub struct S3 {
    component: String,
    connector: Connector,
    bucket: String,
    used: Cell<u32>,
    received: Cell<u64>,
}

impl S3 {
    /// A client for `bucket`, reached through `connector`, on behalf of the component
    /// named `component`.
    pub fn new(component: &str, connector: &Connector, bucket: &str) -> S3 {
        S3 {
            component: component.to_string(),
            connector: connector.clone(),
            bucket: bucket.to_string(),
            used: Cell::new(0),
            received: Cell::new(0),
        }
    }

    /// The component's name.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// The connector's endpoint: `http://127.0.0.1:9000`.
    pub fn endpoint(&self) -> &str {
        &self.connector.endpoint
    }

    /// The connector's name.
    pub fn connector_name(&self) -> &str {
        if self.connector.name.is_empty() {
            "NAME"
        } else {
            &self.connector.name
        }
    }

    /// The connector's region.
    pub fn region(&self) -> &str {
        &self.connector.region
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Requests this call may still make.
    pub fn requests_left(&self) -> u32 {
        MAX_REQUESTS.saturating_sub(self.used.get())
    }

    /// Bytes of response bodies this call may still read.
    pub fn bytes_left(&self) -> u64 {
        MAX_RECEIVED.saturating_sub(self.received.get())
    }

    /// The bucket's URL, with `query` (already encoded; `""` for none).
    pub fn bucket_url(&self, query: &str) -> String {
        let mut url = format!("{}/{}", self.connector.endpoint, self.bucket);
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// The URL of the object `key`, with `query` (already encoded; `""` for none).
    pub fn object_url(&self, key: &str, query: &str) -> String {
        let mut url = format!(
            "{}/{}/{}",
            self.connector.endpoint,
            self.bucket,
            encode_key(key)
        );
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// The value of `x-amz-copy-source` for the object `key` of this bucket.
    pub fn copy_source(&self, key: &str) -> String {
        format!("/{}/{}", encode_query(&self.bucket), encode_key(key))
    }

    /// What an operation is about, for messages: `` `key` in bucket `b` `` or
    /// `` bucket `b` ``.
    fn subject(&self, key: Option<&str>) -> String {
        match key {
            Some(key) => format!("`{}` in bucket `{}`", key.escape_debug(), self.bucket),
            None => format!("bucket `{}`", self.bucket),
        }
    }

    /// Sends `request` for the S3 operation `op` on `key` (or the bucket), adding the
    /// payload header, and counts it against the call's budget. Any answer, whatever its
    /// status, is a `Response`.
    ///
    /// # Errors
    /// The one-line message if no answer came (the server is down, the deadline passed),
    /// or if the call has no request left.
    pub fn send(&self, op: &str, key: Option<&str>, request: Request) -> Result<Response, String> {
        if self.used.get() >= MAX_REQUESTS {
            return Err(format!(
                "artifact store `{}`: S3 {op} of {} would be request {} of this call, and \
                 strata lets one call make {MAX_REQUESTS}: this is a bug in the flavor's \
                 planning, please report it",
                self.component,
                self.subject(key),
                MAX_REQUESTS + 1
            ));
        }
        self.used.set(self.used.get() + 1);
        let request = request.header("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
        match request.send() {
            Ok(response) => {
                self.received
                    .set(self.received.get() + response.body.len() as u64);
                Ok(response)
            }
            Err(err) => Err(self.transport_failure(op, key, &err)),
        }
    }

    /// The message for a request that got no answer.
    fn transport_failure(&self, op: &str, key: Option<&str>, err: &http::Error) -> String {
        let head = format!(
            "artifact store `{}`: S3 {op} of {} at {}",
            self.component,
            self.subject(key),
            self.endpoint()
        );
        let connector = self.connector_name();
        match err {
            http::Error::Timeout => format!(
                "{head} got no answer in time: the S3 server may be down or overloaded (a \
                 call has 10 s unless the component's `--timeout-ms` is raised)"
            ),
            http::Error::Http(code) if code.contains("ConnectionRefused") => format!(
                "{head} failed: connection refused: the S3 server may be down, or the \
                 endpoint of connector `{connector}` is wrong (`strata service-connector \
                 update {connector} --endpoint=URL`)"
            ),
            http::Error::Http(code) if code.contains("Dns") => format!(
                "{head} failed: the host name does not resolve ({code}): check the endpoint \
                 of connector `{connector}` (`strata service-connector update {connector} \
                 --endpoint=URL`)"
            ),
            http::Error::Http(code) => format!(
                "{head} failed: {code}: the S3 server may be down, or not speak HTTP at that \
                 address"
            ),
            http::Error::Denied { .. } | http::Error::Prohibited { .. } => format!(
                "{head} failed: {err}; strata grants the endpoint of the component's service \
                 connector: check `strata artifact-store describe {}`",
                self.component
            ),
            other => format!("{head} failed: {other}"),
        }
    }

    /// The one-line message for an answer to `op` that is a failure: the component, the
    /// operation, the status, S3's code and message, and what to do.
    pub fn failure(&self, op: &str, key: Option<&str>, response: &Response) -> String {
        let body = xml::error_of(&response.body).unwrap_or_else(|| S3ErrorBody {
            code: code_of_status(response.status).to_string(),
            ..S3ErrorBody::default()
        });
        let region = body
            .region
            .clone()
            .or_else(|| response.header("x-amz-bucket-region").map(str::to_string));
        self.describe(op, key, response.status, &body, region.as_deref())
    }

    /// The message for a failed answer with this status, code and message.
    pub fn describe(
        &self,
        op: &str,
        key: Option<&str>,
        status: u16,
        body: &S3ErrorBody,
        region: Option<&str>,
    ) -> String {
        let mut line = format!(
            "artifact store `{}`: S3 {op} of {} at {} answered {status}",
            self.component,
            self.subject(key),
            self.endpoint()
        );
        if !body.code.is_empty() {
            line.push(' ');
            line.push_str(&body.code);
        }
        if !body.message.is_empty() {
            line.push_str(" (");
            line.push_str(&body.message);
            line.push(')');
        }
        if let Some(hint) = self.hint(&body.code, status, region) {
            line.push_str("; ");
            line.push_str(&hint);
        }
        one_line(&line)
    }

    /// The message for a failed answer to a `HEAD`, which has no body: for an answer
    /// that may be about the credentials (400, 401, 403), one `GET` of the same thing
    /// learns S3's error code, so the message can say `SignatureDoesNotMatch` rather than
    /// "403".
    pub fn head_failure(&self, op: &str, key: Option<&str>, response: &Response) -> String {
        if matches!(response.status, 400 | 401 | 403) && self.requests_left() > 0 {
            let request = match key {
                Some(key) => Request::get(&self.object_url(key, "")).header("range", "bytes=0-0"),
                None => Request::get(&self.bucket_url("list-type=2&max-keys=1")),
            };
            if let Ok(again) = self.send(op, key, request.max_bytes(SMALL_ANSWER))
                && !again.is_success()
                && xml::error_of(&again.body).is_some()
            {
                return self.failure(op, key, &again);
            }
        }
        self.failure(op, key, response)
    }

    /// What to do about S3's error `code` (or the status, if there is no code).
    fn hint(&self, code: &str, status: u16, region: Option<&str>) -> Option<String> {
        let (name, connector, bucket) = (&self.component, self.connector_name(), &self.bucket);
        let region_hint = || match region {
            Some(region) if region != self.region() => format!(
                "bucket `{bucket}` is in region `{region}`, and connector `{connector}` says \
                 `{}`: `strata service-connector update {connector} --region={region}`",
                self.region()
            ),
            _ => format!(
                "check the region and endpoint of connector `{connector}` (`strata \
                 service-connector update {connector} --region=REGION --endpoint=URL`)"
            ),
        };
        Some(match code {
            "SignatureDoesNotMatch" => format!(
                "check the connector's secret access key (`strata service-connector update \
                 {connector} --secret-access-key=…`)"
            ),
            "InvalidAccessKeyId" | "NotSignedUp" => format!(
                "the server does not know the connector's access key id (`strata \
                 service-connector update {connector} --access-key-id=…`)"
            ),
            "ExpiredToken" | "InvalidToken" | "TokenRefreshRequired" => format!(
                "the connector's session token is expired or wrong (`strata service-connector \
                 update {connector} --session-token=…`)"
            ),
            "AccessDenied" | "Forbidden" | "AllAccessDisabled" => format!(
                "the credentials of connector `{connector}` may not do this in bucket \
                 `{bucket}`: give them access (s3:ListBucket, s3:GetObject, s3:PutObject, \
                 s3:DeleteObject), or bind another connector with `strata artifact-store \
                 update {name} --connector=NAME`"
            ),
            "NoSuchBucket" => format!(
                "bucket `{bucket}` does not exist: create it, or let strata create it \
                 (`strata artifact-store update {name} --create_bucket=true`, then `strata \
                 artifact-store up {name}`)"
            ),
            "InvalidBucketName" => format!(
                "the server refuses the name: choose another with `strata artifact-store \
                 update {name} --bucket=NAME`"
            ),
            "BucketAlreadyExists" => format!(
                "another account owns a bucket of that name (bucket names are shared by \
                 everyone on the service): choose another with `strata artifact-store update \
                 {name} --bucket=NAME`"
            ),
            "AuthorizationHeaderMalformed"
            | "IllegalLocationConstraintException"
            | "InvalidLocationConstraint"
            | "PermanentRedirect"
            | "AuthorizationQueryParametersError"
            | "InvalidRegion" => region_hint(),
            "RequestTimeTooSkewed" => {
                "this machine's clock is too far from the server's: set it right".to_string()
            }
            "SlowDown" | "ServiceUnavailable" | "RequestTimeout" => {
                "the server is busy or slow: try again in a moment".to_string()
            }
            "InternalError" => "a failure of the S3 server itself: try again, and if it \
                                persists look at the server's log"
                .to_string(),
            "NotImplemented" => "the server does not implement this S3 operation".to_string(),
            "MissingContentLength" | "MalformedXML" | "InvalidArgument" | "InvalidRequest" => {
                "this is likely a bug in the flavor or an S3 server it does not support yet: \
                 please report it with this message"
                    .to_string()
            }
            _ => match status {
                301 | 307 => region_hint(),
                401 | 403 => format!(
                    "check the credentials of connector `{connector}` (`strata \
                     service-connector verify {connector}`)"
                ),
                500..=599 => "the S3 server failed: try again in a moment".to_string(),
                _ => return None,
            },
        })
    }
}

/// The code to show for an answer that has no S3 error in its body (a `HEAD`).
pub fn code_of_status(status: u16) -> &'static str {
    match status {
        301 => "PermanentRedirect",
        307 => "TemporaryRedirect",
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        411 => "MissingContentLength",
        412 => "PreconditionFailed",
        416 => "InvalidRange",
        500 => "InternalError",
        501 => "NotImplemented",
        503 => "ServiceUnavailable",
        _ => "",
    }
}

/// `text` on one line: runs of white space (new lines included) become one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> S3 {
        S3::new(
            "st",
            &Connector {
                name: "s3c".into(),
                endpoint: "http://127.0.0.1:9000".into(),
                region: "us-east-1".into(),
            },
            "my-bucket",
        )
    }

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn urls_are_path_style_with_encoded_keys() {
        let s3 = client();
        assert_eq!(s3.bucket_url(""), "http://127.0.0.1:9000/my-bucket");
        assert_eq!(
            s3.bucket_url("list-type=2"),
            "http://127.0.0.1:9000/my-bucket?list-type=2"
        );
        assert_eq!(
            s3.object_url("dir/a b+c.txt", "uploads"),
            "http://127.0.0.1:9000/my-bucket/dir/a%20b%2Bc.txt?uploads"
        );
        assert_eq!(s3.copy_source("dir/a b"), "/my-bucket/dir/a%20b");
    }

    #[test]
    fn a_failure_names_component_operation_status_code_message_and_hint() {
        let s3 = client();
        let line = s3.failure(
            "PutObject",
            Some("x/.strata-artifact-store"),
            &answer(
                403,
                "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated\n does not match</Message></Error>",
            ),
        );
        assert_eq!(
            line,
            "artifact store `st`: S3 PutObject of `x/.strata-artifact-store` in bucket \
             `my-bucket` at http://127.0.0.1:9000 answered 403 SignatureDoesNotMatch (The \
             request signature we calculated does not match); check the connector's secret \
             access key (`strata service-connector update s3c --secret-access-key=…`)"
        );
        let head = s3.failure("HeadBucket", None, &answer(404, ""));
        assert!(head.contains("answered 404 NotFound"), "{head}");
        let missing = s3.failure(
            "ListObjectsV2",
            None,
            &answer(404, "<Error><Code>NoSuchBucket</Code></Error>"),
        );
        assert!(missing.contains("--create_bucket=true"), "{missing}");
    }

    #[test]
    fn a_wrong_region_is_named_from_the_body_or_the_header() {
        let s3 = client();
        let mut moved = answer(301, "");
        moved
            .headers
            .push(("x-amz-bucket-region".into(), "eu-west-1".into()));
        let line = s3.failure("HeadBucket", None, &moved);
        assert!(
            line.contains("answered 301 PermanentRedirect") && line.contains("--region=eu-west-1"),
            "{line}"
        );
    }

    #[test]
    fn transport_failures_name_the_endpoint_and_say_the_server_may_be_down() {
        let s3 = client();
        let refused = s3.transport_failure(
            "HeadBucket",
            None,
            &http::Error::Http("ErrorCode::ConnectionRefused".into()),
        );
        assert!(
            refused.contains("http://127.0.0.1:9000")
                && refused.contains("connection refused")
                && refused.contains("may be down"),
            "{refused}"
        );
        let slow = s3.transport_failure("GetObject", Some("k"), &http::Error::Timeout);
        assert!(slow.contains("may be down"), "{slow}");
    }

    #[test]
    fn the_budget_is_counted_and_enforced() {
        let s3 = client();
        strata_flavor_sdk::http::answer_with(|_| {
            Ok(Response {
                status: 200,
                headers: Vec::new(),
                body: vec![0; 10],
            })
        });
        for _ in 0..MAX_REQUESTS {
            s3.send("HeadBucket", None, Request::head(&s3.bucket_url("")))
                .unwrap();
        }
        assert_eq!(s3.requests_left(), 0);
        assert_eq!(s3.bytes_left(), MAX_RECEIVED - 640);
        let refused = s3
            .send("HeadBucket", None, Request::head(&s3.bucket_url("")))
            .unwrap_err();
        assert!(refused.contains("request 65"), "{refused}");
    }
}
