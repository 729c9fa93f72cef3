//! Origins: where a flavor's network request goes (scheme, host, port), as its
//! configuration grants them. The address policy applied to them is the sandbox's
//! (`strata_sandbox::net`); this is the parsing both the service and the sandbox share.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `http` or `https`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Where a request goes: scheme, host, port. The host is lower case; an IPv6 literal is
/// kept without its brackets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(
                f,
                "{}://[{}]:{}",
                self.scheme.as_str(),
                self.host,
                self.port
            )
        } else {
            write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
        }
    }
}

impl Origin {
    /// The origin of an `http://` or `https://` URL, or why it has none.
    pub fn of_url(url: &str) -> Result<Origin, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("`{url}` is not a URL: it has no `http://` or `https://`"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(format!(
                    "`{url}` uses `{other}://`; flavors reach only `http://` and `https://`"
                ));
            }
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        Origin::of_authority(scheme, authority).map_err(|e| format!("`{url}`: {e}"))
    }

    /// The origin of `authority` (`host[:port]`) under `scheme`.
    pub fn of_authority(scheme: Scheme, authority: &str) -> Result<Origin, String> {
        if authority.contains('@') {
            return Err(
                "a URL with a user name or password in it (`user@host`) is not accepted: \
                 give credentials with a service connector"
                    .into(),
            );
        }
        if authority.is_empty() {
            return Err("it has no host".into());
        }
        let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or("its IPv6 address has no closing `]`")?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("junk after its IPv6 address")?),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
                Some(_) => return Err("an IPv6 address must be in brackets: `[::1]`".into()),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            None | Some("") => scheme.default_port(),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{p}` is not a port (1 to 65535)"))?,
        };
        let host = host.to_ascii_lowercase();
        let host = host.strip_suffix('.').unwrap_or(&host).to_string();
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_'))
        {
            return Err(format!("`{host}` is not a host name or address"));
        }
        if host.contains(':') && host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{host}` is not an IPv6 address"));
        }
        // One spelling per address: `127.1`, `0x7f.0.0.1`, `2130706433` and the like
        // are not accepted (no top-level domain is numeric).
        let last = host.rsplit('.').next().unwrap_or("");
        let numeric = !last.is_empty()
            && (last.chars().all(|c| c.is_ascii_digit()) || last.starts_with("0x"));
        if !host.contains(':') && numeric && host.parse::<Ipv4Addr>().is_err() {
            return Err(format!(
                "`{host}` is not an IPv4 address (four decimal numbers)"
            ));
        }
        Ok(Origin { scheme, host, port })
    }

    /// What addresses this origin may connect to: see [`Reach`].
    pub fn reach(&self) -> Reach {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Reach::Literal(canonical(ip));
        }
        if self.host == "localhost" || self.host.ends_with(".localhost") {
            return Reach::Loopback;
        }
        Reach::Public
    }
}

/// Which addresses a granted origin may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The URL named this address: it, and only it.
    Literal(IpAddr),
    /// The URL named `localhost`: loopback addresses.
    Loopback,
    /// A name: the public addresses it resolves to.
    Public,
}

/// IPv4 carried in IPv6 (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`) as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            let embedded =
                Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0);
            let compat = s[..6].iter().all(|x| *x == 0)
                && !embedded.is_unspecified()
                && v6 != Ipv6Addr::LOCALHOST;
            if nat64 || compat {
                IpAddr::V4(embedded)
            } else {
                ip
            }
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(url: &str) -> Origin {
        Origin::of_url(url).unwrap()
    }

    #[test]
    fn an_origin_is_scheme_host_and_port_with_the_default_port_filled_in() {
        assert_eq!(
            o("http://Example.COM/x?y").to_string(),
            "http://example.com:80"
        );
        assert_eq!(
            o("https://example.com").to_string(),
            "https://example.com:443"
        );
        assert_eq!(
            o("http://127.0.0.1:9000/").to_string(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(o("http://[::1]:8080/a").to_string(), "http://[::1]:8080");
        assert_eq!(o("http://example.com.:80"), o("http://example.com"));
        assert_ne!(o("http://example.com"), o("https://example.com"));
        assert_ne!(o("http://example.com:81"), o("http://example.com"));
        for bad in [
            "ftp://example.com",
            "http://user:pw@example.com/",
            "http://example.com@evil.com/",
            "http://:80",
            "http://example.com:0",
            "http://example.com:99999",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://2130706433/",
            "http://127.0.0.0x1/",
            "http://[::1/",
            "http://::1:80/",
            "http://exa mple.com/",
            "example.com",
        ] {
            assert!(Origin::of_url(bad).is_err(), "{bad} was accepted");
        }
    }
}
