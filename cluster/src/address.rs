//! Addresses: `df://HOST:PORT` for a scheduler given to clients, `HOST:PORT` for the roles.

use std::fmt;

use crate::error::ClusterError;

/// The port a Ballista scheduler listens on unless told otherwise.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// A host (name, IPv4 or IPv6 address) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Parse `HOST:PORT` (`[::1]:50050` for IPv6); without `:PORT`, `default_port` (if any).
    pub fn parse(
        what: &'static str,
        text: &str,
        default_port: Option<u16>,
    ) -> Result<HostPort, ClusterError> {
        let bad = |message: &str| ClusterError::Address {
            what,
            value: text.to_string(),
            message: message.to_string(),
        };
        let t = text.trim();
        let (host, port) = if let Some(rest) = t.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address needs its closing ]"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("expected [IPv6]:PORT")),
            };
            (host, port)
        } else {
            match t.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, Some(port)),
                Some(_) => return Err(bad("write an IPv6 address in brackets: [::1]:50050")),
                None => (t, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host: expected HOST:PORT, e.g. 10.0.0.5:50050"));
        }
        if host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(bad("expected HOST:PORT, e.g. 10.0.0.5:50050"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
            None => default_port.ok_or_else(|| bad("no port: expected HOST:PORT"))?,
        };
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }

    /// `host:port` as a socket address string (IPv6 hosts in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.authority())
    }
}

/// A scheduler as clients name it: `df://HOST:PORT` (the port defaults to 50050; a bare
/// `HOST:PORT` is accepted too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    pub scheduler: HostPort,
}

impl ClusterUrl {
    pub fn parse(text: &str) -> Result<ClusterUrl, ClusterError> {
        let t = text.trim();
        let rest = match t.split_once("://") {
            Some(("df", rest)) => rest,
            Some((scheme, _)) => {
                return Err(ClusterError::Address {
                    what: "cluster",
                    value: text.to_string(),
                    message: format!(
                        "unknown scheme {scheme}://; a Ballista scheduler is df://HOST:PORT"
                    ),
                });
            }
            None => t,
        };
        let rest = rest.trim_end_matches('/');
        Ok(ClusterUrl {
            scheduler: HostPort::parse("cluster", rest, Some(DEFAULT_SCHEDULER_PORT))?,
        })
    }

    /// The URL Ballista's client takes.
    pub fn ballista_url(&self) -> String {
        format!("df://{}", self.scheduler.authority())
    }
}

impl fmt::Display for ClusterUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "df://{}", self.scheduler.authority())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls() {
        let u = ClusterUrl::parse("df://10.0.0.5:50070").expect("url");
        assert_eq!(u.scheduler.host, "10.0.0.5");
        assert_eq!(u.scheduler.port, 50070);
        assert_eq!(u.to_string(), "df://10.0.0.5:50070");
        let u = ClusterUrl::parse("sched.local").expect("url");
        assert_eq!(u.scheduler.port, DEFAULT_SCHEDULER_PORT);
        let u = ClusterUrl::parse("df://[::1]:7000/").expect("url");
        assert_eq!(u.ballista_url(), "df://[::1]:7000");
        assert!(ClusterUrl::parse("http://x:1").is_err());
        assert!(ClusterUrl::parse("df://:50050").is_err());
        assert!(ClusterUrl::parse("df://x:0").is_err());
        assert!(ClusterUrl::parse("df://x:99999").is_err());
        assert!(ClusterUrl::parse("df://::1:5").is_err());
    }

    #[test]
    fn host_ports() {
        let h = HostPort::parse("bind", "0.0.0.0:50051", None).expect("bind");
        assert_eq!(h.authority(), "0.0.0.0:50051");
        assert!(HostPort::parse("bind", "0.0.0.0", None).is_err());
        assert_eq!(
            HostPort::parse("bind", "host", Some(9))
                .expect("default")
                .port,
            9
        );
    }
}
