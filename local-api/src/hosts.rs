//! Which `Host` headers local-api's own pages answer: the address it listens on and
//! `localhost`. A web page elsewhere can point a name it controls at 127.0.0.1 (DNS
//! rebinding) and then read local-api as if it were that site; its requests carry that name
//! in `Host`, and are refused.

use std::net::IpAddr;

/// The host names local-api answers its own routes (the outbox, the example page) under.
#[derive(Debug, Clone)]
pub struct LocalHosts {
    listen: String,
}

impl Default for LocalHosts {
    fn default() -> Self {
        Self::new("127.0.0.1")
    }
}

impl LocalHosts {
    /// For a server listening on `listen` (`--host`).
    pub fn new(listen: &str) -> Self {
        Self {
            listen: listen
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
        }
    }

    /// Whether a request with this `Host` header may be answered: its name (without the
    /// port) is the listen address or `localhost`; on an unspecified listen address
    /// (`0.0.0.0`, `::`), any IP address. Never a name a DNS server answers for.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(name) = host.and_then(host_name) else {
            return false;
        };
        if name == "localhost" || name == self.listen {
            return true;
        }
        let unspecified = self
            .listen
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        unspecified && name.parse::<IpAddr>().is_ok()
    }
}

/// The name of a `Host` header, lower-cased, without its port or IPv6 brackets; `None` if
/// it is not a plausible host.
fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']')?.0
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let plausible = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':');
    plausible.then(|| name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listen_address_and_localhost_are_answered() {
        let hosts = LocalHosts::new("127.0.0.1");
        for ok in ["127.0.0.1:3000", "localhost:3000", "LOCALHOST", "127.0.0.1"] {
            assert!(hosts.allows(Some(ok)), "{ok}");
        }
        for refused in [
            "evil.example:3000",
            "localhost.evil.example:3000",
            "127.0.0.1.nip.io:3000",
            "10.0.0.1:3000",
            "",
            "127.0.0.1\";alert(1)//",
        ] {
            assert!(!hosts.allows(Some(refused)), "{refused}");
        }
        assert!(!hosts.allows(None));
        let any = LocalHosts::new("0.0.0.0");
        assert!(any.allows(Some("192.168.1.5:3000")));
        assert!(!any.allows(Some("rebound.example:3000")));
        let v6 = LocalHosts::new("::1");
        assert!(v6.allows(Some("[::1]:3000")));
    }
}
