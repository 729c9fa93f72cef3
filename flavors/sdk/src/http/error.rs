//! Why a request got no answer: [`Error`].

use std::fmt;

use crate::bindings::wasi::http::types::ErrorCode;

/// Why [`send`](super::Request::send) returned no [`Response`](super::Response).
///
/// An answer of any status, 404 or 500 included, is a `Response`, not an `Error`: check
/// [`Response::is_success`](super::Response::is_success). Each variant's
/// [`Display`](fmt::Display) is one line for a person, saying what to fix where there is
/// something to fix; `?` turns it into the crate's [`Error`](crate::Error), so a
/// lifecycle call can return it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// strata refused the request before sending anything: no `url` field, service
    /// connector or accepted `flavor-info.origins` grants `origin`
    /// (`error-code::http-request-denied`).
    Denied {
        /// `scheme://host[:port]` of the request, without any userinfo.
        origin: String,
    },
    /// strata refused to connect: the host resolves to an address no flavor may reach,
    /// such as cloud metadata, a link-local address, or a private address the
    /// configuration did not name (`error-code::destination-ip-prohibited`).
    Prohibited {
        /// `scheme://host[:port]` of the request, without any userinfo.
        origin: String,
    },
    /// The URL is not one a request can be made to: why, naming the URL.
    Url(String),
    /// No answer in time: the connection or the response took too long, or the call's
    /// deadline, which bounds every request, came first.
    Timeout,
    /// Any other failure `wasi:http` reports (a name that does not resolve, a refused
    /// connection, a TLS failure, a malformed answer, a header refused): the
    /// `error-code`, `Debug`-formatted.
    Http(String),
    /// The response body is longer than the request's
    /// [`max_bytes`](super::Request::max_bytes).
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The body could not be sent or read whole: why.
    Body(String),
}

impl Error {
    /// The error for `code`, as `wasi:http` reported it for a request to `origin`.
    // Outside WebAssembly, requests never reach `wasi:http`: only the tests call this.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn from_code(code: ErrorCode, origin: &str) -> Self {
        match code {
            ErrorCode::HttpRequestDenied => Error::Denied {
                origin: origin.to_string(),
            },
            ErrorCode::DestinationIpProhibited => Error::Prohibited {
                origin: origin.to_string(),
            },
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout => Error::Timeout,
            ErrorCode::HttpRequestUriInvalid => {
                Error::Url(format!("strata found the URL for {origin} malformed"))
            }
            other => Error::Http(format!("{other:?}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Denied { origin } => write!(
                f,
                "strata refused the request to {origin}: no configuration field or connector \
                 grants that origin (configure it in a `url` field)"
            ),
            Error::Prohibited { origin } => write!(
                f,
                "strata refused the request to {origin}: it resolves to an address flavors \
                 may not reach (cloud metadata, link-local, or a private address the \
                 configuration did not name)"
            ),
            Error::Url(why) => write!(f, "not a URL a flavor can request: {why}"),
            Error::Timeout => f.write_str(
                "the request timed out: no answer came before the connection's or the call's \
                 deadline (strata bounds every request by the deadline of its call)",
            ),
            Error::Http(code) => write!(f, "the request failed: {code}"),
            Error::TooLarge { limit } => write!(
                f,
                "the response body is larger than {limit} bytes, the request's limit (raise \
                 it with `Request::max_bytes`)"
            ),
            Error::Body(why) => write!(f, "the body could not be sent or read whole: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// The request's error as a lifecycle call's: its one line, so that `?` works in
/// [`Flavor`](crate::Flavor) code.
impl From<Error> for crate::Error {
    fn from(err: Error) -> Self {
        crate::Error::new(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_origin_and_what_to_configure() {
        let denied = Error::Denied {
            origin: "https://hooks.example".to_string(),
        };
        assert_eq!(
            denied.to_string(),
            "strata refused the request to https://hooks.example: no configuration field or \
             connector grants that origin (configure it in a `url` field)"
        );
        let prohibited = Error::Prohibited {
            origin: "http://169.254.169.254".to_string(),
        };
        assert_eq!(
            prohibited.to_string(),
            "strata refused the request to http://169.254.169.254: it resolves to an address \
             flavors may not reach (cloud metadata, link-local, or a private address the \
             configuration did not name)"
        );
    }

    #[test]
    fn every_error_is_one_line() {
        let all = [
            Error::Denied {
                origin: "https://a".into(),
            },
            Error::Prohibited {
                origin: "https://a".into(),
            },
            Error::Url("`x` has no scheme".into()),
            Error::Timeout,
            Error::Http("DnsError(..)".into()),
            Error::TooLarge { limit: 16 },
            Error::Body("closed".into()),
        ];
        for err in all {
            let text = err.to_string();
            assert!(!text.contains('\n') && !text.ends_with('.'), "{text}");
        }
        assert!(
            Error::TooLarge { limit: 16 }
                .to_string()
                .contains("16 bytes")
        );
    }

    #[test]
    fn error_codes_map_to_the_variants_a_flavor_acts_on() {
        let origin = "https://a.example";
        assert_eq!(
            Error::from_code(ErrorCode::HttpRequestDenied, origin),
            Error::Denied {
                origin: origin.into()
            }
        );
        assert_eq!(
            Error::from_code(ErrorCode::DestinationIpProhibited, origin),
            Error::Prohibited {
                origin: origin.into()
            }
        );
        assert_eq!(
            Error::from_code(ErrorCode::ConnectionTimeout, origin),
            Error::Timeout
        );
        assert_eq!(
            Error::from_code(ErrorCode::HttpResponseTimeout, origin),
            Error::Timeout
        );
        assert_eq!(
            Error::from_code(ErrorCode::ConnectionRefused, origin),
            Error::Http("ErrorCode::ConnectionRefused".into())
        );
    }

    #[test]
    fn the_crate_error_keeps_the_line() {
        let err: crate::Error = Error::Timeout.into();
        assert!(err.to_string().starts_with("the request timed out"));
    }
}
