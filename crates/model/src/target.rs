//! Where a webhook may be sent. A subscription names a URL, and whoever can create one could
//! otherwise make the notify service POST (and, with redirects, GET) inside the network it
//! runs in: its loopback, the private LAN, the cloud metadata service. So webhook targets
//! must be public unicast addresses; private ones only when the operator allows them
//! (`--webhook-allow-private`, for local receivers and tests).
//!
//! This module only parses and classifies; resolving names is the caller's I/O (the gateway
//! at subscription time, notify's resolver at connect time).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A webhook URL's host as the HTTP client will see it: the WHATWG URL parser (the one
/// reqwest uses) turns `0x7f000001`, `2130706433` and `127.1` into `127.0.0.1`, so the
/// check and the connection agree on the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookHost {
    /// An address written in the URL: no resolution happens, so it is checked as is.
    Ip(IpAddr),
    /// A name to resolve; the port the URL names (or its scheme's default).
    Domain { name: String, port: u16 },
}

/// Parses a webhook URL: `http` or `https`, with a host. The error says what is wrong.
pub fn webhook_host(url: &str) -> Result<WebhookHost, String> {
    let parsed =
        url::Url::parse(url).map_err(|e| format!("webhook.url `{url}` is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "webhook.url `{url}` must be an http:// or https:// URL"
        ));
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Ok(WebhookHost::Ip(IpAddr::V4(ip))),
        Some(url::Host::Ipv6(ip)) => Ok(WebhookHost::Ip(IpAddr::V6(ip))),
        Some(url::Host::Domain(name)) if !name.is_empty() => Ok(WebhookHost::Domain {
            name: name.trim_end_matches('.').to_ascii_lowercase(),
            port,
        }),
        _ => Err(format!("webhook.url `{url}` has no host")),
    }
}

/// The form of a webhook URL anyone who may read subscriptions sees: scheme, host and
/// port only. Userinfo, path and query are often the secret itself (`user:pass@`, a Slack
/// or Teams hook's path), so they show as `…`.
pub fn mask_webhook_url(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return "…".into();
    };
    let host = match parsed.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(h) => h.to_string(),
        None => return format!("{}:…", parsed.scheme()),
    };
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    let hidden = !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.path() != "/"
        || parsed.query().is_some()
        || parsed.fragment().is_some();
    let rest = if hidden { "/…" } else { "/" };
    format!("{}://{host}{port}{rest}", parsed.scheme())
}

/// Why a host name is no place for a webhook before it is even resolved: `localhost` and
/// its subdomains are loopback by definition (RFC 6761).
pub fn refused_name(name: &str) -> Option<&'static str> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (name == "localhost" || name.ends_with(".localhost")).then_some("loopback (localhost)")
}

/// Why `ip` is no place for a webhook (loopback, private, link-local …), or `None` for a
/// public unicast address. IPv6 forms that carry an IPv4 address (mapped, compatible,
/// NAT64, 6to4) are judged by that address.
pub fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

/// `a.b.c.d/len` contains `ip`.
fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: [([u8; 4], u32, &str); 16] = [
        ([0, 0, 0, 0], 8, "unspecified (0.0.0.0/8)"),
        ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
        (
            [100, 64, 0, 0],
            10,
            "shared carrier-grade NAT (100.64.0.0/10)",
        ),
        ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
        (
            [169, 254, 0, 0],
            16,
            "link-local (169.254.0.0/16, where cloud metadata services live)",
        ),
        ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
        (
            [192, 0, 0, 0],
            24,
            "IETF protocol assignments (192.0.0.0/24)",
        ),
        ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
        ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
        ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
        ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
        ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
        ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
        ([255, 255, 255, 255], 32, "broadcast (255.255.255.255)"),
        ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
    ];
    RANGES
        .iter()
        .find(|(net, len, _)| in_v4(ip, *net, *len))
        .map(|(_, _, why)| *why)
}

/// The first `len` bits of `ip` are those of `net`.
fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u32) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    u128::from(ip) & mask == u128::from(net) & mask
}

/// The IPv4 address in the last 32 bits.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    Ipv4Addr::from(u128::from(ip) as u32)
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    let net = |s: &str| s.parse::<Ipv6Addr>().expect("a literal IPv6 network");
    // Forms that carry an IPv4 address reach that address: judge it.
    let embeds_v4 = [
        ("::ffff:0:0", 96),  // IPv4-mapped
        ("::", 96),          // IPv4-compatible (deprecated)
        ("64:ff9b::", 96),   // NAT64 well-known prefix
        ("64:ff9b:1::", 48), // NAT64 local use
    ];
    for (prefix, len) in embeds_v4 {
        if in_v6(ip, net(prefix), len) {
            return refused_v4(low_v4(ip)).or(if len == 48 {
                Some("NAT64 local use (64:ff9b:1::/48)")
            } else {
                None
            });
        }
    }
    if in_v6(ip, net("2002::"), 16) {
        // 6to4: the IPv4 address is in bits 16..48.
        let v4 = Ipv4Addr::from((u128::from(ip) >> 80) as u32);
        return refused_v4(v4);
    }
    const RANGES: [(&str, u32, &str); 8] = [
        ("fc00::", 7, "unique local (fc00::/7)"),
        ("fe80::", 10, "link-local (fe80::/10)"),
        ("fec0::", 10, "site-local (fec0::/10)"),
        ("ff00::", 8, "multicast (ff00::/8)"),
        ("2001:db8::", 32, "documentation (2001:db8::/32)"),
        ("3fff::", 20, "documentation (3fff::/20)"),
        ("100::", 64, "discard-only (100::/64)"),
        (
            "2001::",
            23,
            "IETF protocol assignments, Teredo included (2001::/23)",
        ),
    ];
    RANGES
        .iter()
        .find(|(n, len, _)| in_v6(ip, net(n), *len))
        .map(|(_, _, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        refused_address(s.parse().unwrap()).is_some()
    }

    #[test]
    fn private_special_and_embedded_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.100.100.200",
            "169.254.169.254",
            "192.0.0.192",
            "192.0.2.5",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn public_unicast_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "::ffff:8.8.8.8",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
        ] {
            assert!(!refused(ip), "{ip} should pass");
        }
    }

    #[test]
    fn masked_urls_keep_only_scheme_host_and_port() {
        assert_eq!(
            mask_webhook_url("https://hooks.slack.com/services/T0/B0/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            mask_webhook_url("https://user:pass@example.org:8443/h?token=abc"),
            "https://example.org:8443/…"
        );
        assert_eq!(
            mask_webhook_url("http://example.org"),
            "http://example.org/"
        );
        assert_eq!(mask_webhook_url("http://[::1]:9/x"), "http://[::1]:9/…");
        assert_eq!(mask_webhook_url("not a url"), "…");
    }

    #[test]
    fn hosts_are_read_as_the_http_client_reads_them() {
        let ip = |s: &str| WebhookHost::Ip(s.parse().unwrap());
        assert_eq!(webhook_host("http://0x7f000001/h"), Ok(ip("127.0.0.1")));
        assert_eq!(webhook_host("http://2130706433/h"), Ok(ip("127.0.0.1")));
        assert_eq!(webhook_host("http://127.1:9/h"), Ok(ip("127.0.0.1")));
        assert_eq!(
            webhook_host("http://[::ffff:127.0.0.1]/h"),
            Ok(ip("::ffff:127.0.0.1"))
        );
        assert_eq!(
            webhook_host("https://Hooks.Example.org./x"),
            Ok(WebhookHost::Domain {
                name: "hooks.example.org".into(),
                port: 443
            })
        );
        for bad in ["ftp://example.org/x", "example.org", "http://", "/a/path"] {
            assert!(webhook_host(bad).is_err(), "{bad}");
        }
        assert!(refused_name("localhost").is_some());
        assert!(refused_name("LOCALHOST.").is_some());
        assert!(refused_name("api.localhost").is_some());
        assert!(refused_name("example.org").is_none());
    }
}
