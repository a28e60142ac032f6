//! Outbound safety: a tenant admin chooses where messages go, so an address
//! inside the operator's network (loopback, private, link-local — the cloud
//! metadata service —, shared, unspecified, multicast) is refused unless the
//! operator allows private targets. Checked when a receiver is written (its
//! URL's host as given), and again at every connection: HTTP through a DNS
//! resolver that refuses such answers (so a name cannot be re-pointed
//! after the check, and no redirect reaches one), SMTP by resolving,
//! checking and connecting to the address checked.

use std::net::{IpAddr, SocketAddr};

/// Why `ip` is not a public address, if it is not.
pub fn private_kind(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_link_local() {
                Some("link-local (cloud metadata)")
            } else if v4.is_private() {
                Some("private")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared (carrier-grade NAT)")
            } else if v4.is_unspecified() || a == 0 {
                Some("unspecified")
            } else if v4.is_multicast() || v4.is_broadcast() || a >= 240 {
                Some("multicast or reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

/// The host of an `http(s)://` or `smtp://` URL and its port (or `default`).
pub fn host_port(url: &str, default: u16) -> Result<(String, u16), String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| format!("{url:?} is not a URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed '['"))?;
            (host.to_owned(), after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        },
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("{url:?}: the port {p:?} is not a number"))?,
        None => default,
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// Refuses `ip` unless it is public or private targets are allowed.
pub fn check_ip(host: &str, ip: IpAddr, allow_private: bool) -> Result<(), String> {
    match private_kind(ip) {
        Some(kind) if !allow_private => Err(format!(
            "{host} is {ip}, a {kind} address: refused (the operator may allow it with --notify-allow-private-targets)"
        )),
        _ => Ok(()),
    }
}

/// The addresses `host:port` resolves to (a literal address is itself),
/// unchecked.
async fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("{host}: cannot resolve: {e}"))?
        .collect();
    match addrs.is_empty() {
        true => Err(format!("{host}: no address")),
        false => Ok(addrs),
    }
}

/// Refuses `addrs` (of `host`) if any is not allowed.
fn check_all(host: &str, addrs: &[SocketAddr], allow_private: bool) -> Result<(), String> {
    addrs
        .iter()
        .try_for_each(|a| check_ip(host, a.ip(), allow_private))
}

/// The addresses `host:port` resolves to, each checked.
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    let addrs = lookup(host, port).await?;
    check_all(host, &addrs, allow_private)?;
    Ok(addrs)
}

/// Checks what `host` resolves to now, if it resolves: a name that does
/// not resolve yet is left to the send (which checks again, and fails
/// visibly in the delivery log).
pub async fn check_host(host: &str, port: u16, allow_private: bool) -> Result<(), String> {
    match lookup(host, port).await {
        Ok(addrs) => check_all(host, &addrs, allow_private),
        Err(_) => Ok(()),
    }
}

/// reqwest's resolver: every name resolved through [`resolve`].
#[derive(Debug, Clone, Copy)]
pub struct CheckedResolver {
    /// `--notify-allow-private-targets`.
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let addrs = resolve(name.as_str(), 0, allow).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Checks a literal address in `url` (names are checked when resolved).
pub fn check_literal(url: &str, allow_private: bool) -> Result<(), String> {
    let (host, _) = host_port(url, 0)?;
    match host.parse::<IpAddr>() {
        Ok(ip) => check_ip(&host, ip, allow_private),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_metadata_addresses_are_named() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("fe80::1", "link-local"),
            ("fd00::1", "private (unique local)"),
        ] {
            assert_eq!(private_kind(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert_eq!(private_kind(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn urls_give_their_host_and_port() {
        assert_eq!(
            host_port("https://hooks.example.com/x?y", 443).unwrap(),
            ("hooks.example.com".into(), 443)
        );
        assert_eq!(
            host_port("smtp://user@mail.example.com:2525", 587).unwrap(),
            ("mail.example.com".into(), 2525)
        );
        assert_eq!(
            host_port("http://[::1]:8080/", 80).unwrap(),
            ("::1".into(), 8080)
        );
        assert!(host_port("hooks.example.com", 443).is_err());
        assert!(host_port("http://:80/", 80).is_err());
        assert!(host_port("http://h:x/", 80).is_err());
    }

    #[test]
    fn a_literal_private_address_is_refused_unless_allowed() {
        let err = check_literal("http://169.254.169.254/latest", false).unwrap_err();
        assert!(err.contains("--notify-allow-private-targets"), "{err}");
        assert!(check_literal("http://169.254.169.254/latest", true).is_ok());
        assert!(check_literal("https://example.com/", false).is_ok());
    }
}
