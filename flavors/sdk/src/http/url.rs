//! A request's URL, split into the parts `wasi:http` takes one by one.

use super::Error;

/// The parts of an `http://` or `https://` URL that a `wasi:http` request is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    /// `true` for `https`, `false` for `http`.
    pub(crate) https: bool,
    /// Everything between `://` and the path, as written: userinfo (if any), host and
    /// port. strata sees it unchanged, and refuses a userinfo.
    pub(crate) authority: &'a str,
    /// The path and query, at least `/`. A fragment is never sent.
    pub(crate) path_with_query: String,
}

impl<'a> Target<'a> {
    /// Splits `url`. It must be `http(s)://authority[/path][?query][#fragment]`, with no
    /// white space or control characters anywhere.
    pub(crate) fn parse(url: &'a str) -> Result<Self, Error> {
        if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::Url(format!(
                "`{}` holds {c:?}: percent-encode it (a space is %20)",
                url.escape_debug()
            )));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(Error::Url(format!(
                "`{url}` has no scheme: write it as http://host/path or https://host/path"
            )));
        };
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(Error::Url(format!(
                "`{url}`: a flavor's requests use http or https, not `{scheme}`"
            )));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if host_of(authority).is_empty() {
            return Err(Error::Url(format!("`{url}` names no host")));
        }
        let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
        let path_with_query = if tail.starts_with('/') {
            tail.to_string()
        } else {
            format!("/{tail}")
        };
        Ok(Target {
            https,
            authority,
            path_with_query,
        })
    }

    /// `scheme://host[:port]`, as written but without any userinfo (a password, say),
    /// for messages and logs.
    pub(crate) fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", host_of(self.authority))
    }
}

/// The authority without its userinfo: `host[:port]`.
fn host_of(authority: &str) -> &str {
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// `scheme://host[:port]` of `url`, without userinfo, or as much of it as can be told
/// (the text before the path) if `url` does not parse.
pub(crate) fn origin_of(url: &str) -> String {
    match Target::parse(url) {
        Ok(target) => target.origin(),
        Err(_) => {
            let start = url.find("://").map_or(0, |at| at + 3);
            let end = url[start..]
                .find(['/', '?', '#'])
                .map_or(url.len(), |at| start + at);
            let (scheme, authority) = (&url[..start], &url[start..end]);
            format!("{scheme}{}", host_of(authority))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (bool, &str, String) {
        let t = Target::parse(url).unwrap();
        (t.https, t.authority, t.path_with_query)
    }

    #[test]
    fn a_url_splits_into_scheme_authority_and_path_with_query() {
        assert_eq!(
            parts("https://hooks.slack.com/services/T0/B1/xyz?a=1&b=2"),
            (
                true,
                "hooks.slack.com",
                "/services/T0/B1/xyz?a=1&b=2".to_string()
            )
        );
        assert_eq!(
            parts("http://127.0.0.1:8080/x"),
            (false, "127.0.0.1:8080", "/x".to_string())
        );
        assert_eq!(
            parts("HTTPS://[::1]:8443/v1/"),
            (true, "[::1]:8443", "/v1/".to_string())
        );
    }

    #[test]
    fn a_missing_path_is_slash_and_a_fragment_is_never_sent() {
        assert_eq!(
            parts("https://example.com"),
            (true, "example.com", "/".to_string())
        );
        assert_eq!(
            parts("https://example.com?q=1"),
            (true, "example.com", "/?q=1".to_string())
        );
        assert_eq!(
            parts("https://example.com/a?q=1#top"),
            (true, "example.com", "/a?q=1".to_string())
        );
        assert_eq!(
            parts("https://example.com#top"),
            (true, "example.com", "/".to_string())
        );
    }

    #[test]
    fn userinfo_is_passed_through_but_kept_out_of_the_origin() {
        let t = Target::parse("https://user:secret@example.com:8443/p").unwrap();
        assert_eq!(t.authority, "user:secret@example.com:8443");
        assert_eq!(t.origin(), "https://example.com:8443");
        assert_eq!(
            origin_of("ftp://user:secret@example.com/p"),
            "ftp://example.com"
        );
    }

    #[test]
    fn the_origin_keeps_the_port_as_written() {
        assert_eq!(
            origin_of("http://localhost:9000/a"),
            "http://localhost:9000"
        );
        assert_eq!(origin_of("https://example.com/a"), "https://example.com");
    }

    #[test]
    fn what_is_not_an_http_url_is_refused_with_the_reason() {
        let reason = |url: &str| match Target::parse(url) {
            Err(Error::Url(reason)) => reason,
            other => panic!("{url}: {other:?}"),
        };
        assert!(reason("ftp://example.com/").contains("not `ftp`"));
        assert!(reason("example.com/path").contains("no scheme"));
        assert!(reason("https:///path").contains("names no host"));
        assert!(reason("https://user@/path").contains("names no host"));
        assert!(reason("https://example.com/a b").contains("%20"));
        assert!(reason("https://example.com/\r\nX-Evil: 1").contains("percent-encode"));
    }
}
