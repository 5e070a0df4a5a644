//! Where notify may connect: the connect-time half of the webhook SSRF guard (the gateway
//! checks at subscription time, but a name can resolve elsewhere later, and a subscription
//! stored while private targets were allowed stays stored).
//!
//! Two checks, both before any connection: a URL whose host is an address is judged as it
//! is ([`refusal`], since the HTTP client resolves nothing for it), and a name goes through
//! [`PublicOnly`], the client's resolver, which drops the private addresses it resolves to
//! (`localhost` too) and fails when none is left. Unless the operator allows private
//! targets (`--webhook-allow-private`).

use std::net::SocketAddr;

use borderwatch_model::{WebhookHost, refused_address, webhook_host};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a webhook target was not connected to: its address is not public. Also the error
/// [`PublicOnly`] fails with, so an attempt's error can be told apart from a network one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refused: {host} {why}, not a public address (webhooks to private addresses need --webhook-allow-private)"
)]
pub(crate) struct Refused {
    pub(crate) host: String,
    pub(crate) why: String,
}

/// Why `url` must not be connected to, judged from the URL alone when its host is an
/// address; `None` for a name, which the resolver judges by what it resolves to.
pub(crate) fn refusal(url: &str) -> Option<Refused> {
    match webhook_host(url) {
        Ok(WebhookHost::Ip(ip)) => refused_address(ip).map(|why| Refused {
            host: ip.to_string(),
            why: format!("is {why}"),
        }),
        Ok(WebhookHost::Domain { .. }) => None,
        Err(e) => Some(Refused {
            host: "the webhook URL".into(),
            why: format!("cannot be read ({e})"),
        }),
    }
}

/// The refusal somewhere in `err`'s chain of causes, if it failed for one.
pub(crate) fn refused_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<Refused>() {
            return Some(r);
        }
        cur = e.source();
    }
    None
}

/// The HTTP client's resolver when private targets are refused: the system's resolver,
/// keeping only public addresses.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            // The port is the client's to set; 0 here.
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: Addrs = Box::new(public_only(&host, resolved)?.into_iter());
            Ok(addrs)
        })
    }
}

/// The public addresses among those `host` resolved to; refused when there are none.
fn public_only(host: &str, resolved: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refused> {
    let (public, private): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
        .into_iter()
        .partition(|a| refused_address(a.ip()).is_none());
    if !public.is_empty() {
        return Ok(public);
    }
    let why = private
        .first()
        .and_then(|a| refused_address(a.ip()).map(|w| format!("resolves to {}, {w}", a.ip())))
        .unwrap_or_else(|| "resolves to no address".into());
    Err(Refused {
        host: host.into(),
        why,
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn address_hosts_are_judged_from_the_url() {
        for url in [
            "http://127.0.0.1:9/h",
            "http://0x7f000001/h",
            "http://[::ffff:127.0.0.1]/h",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
        ] {
            let r = refusal(url).unwrap_or_else(|| panic!("{url} should be refused"));
            assert!(r.to_string().starts_with("refused: "), "{r}");
        }
        assert_eq!(refusal("https://hooks.example.org/x"), None);
        assert_eq!(
            refusal("http://localhost:9/x"),
            None,
            "names are the resolver's"
        );
    }

    #[test]
    fn only_public_addresses_are_kept() {
        let a = |s: &str| SocketAddr::new(s.parse().unwrap(), 0);
        let kept = public_only("mixed", vec![a("10.0.0.1"), a("93.184.216.34")]).unwrap();
        assert_eq!(kept, vec![a("93.184.216.34")]);
        let r = public_only("inside", vec![a("127.0.0.1"), a("::1")]).unwrap_err();
        assert_eq!(r.host, "inside");
        assert!(
            r.why.contains("127.0.0.1") && r.why.contains("loopback"),
            "{r}"
        );
        assert!(public_only("none", vec![]).is_err());
    }

    /// The resolver notify's client uses, on a name the system resolves from its hosts file
    /// (no query leaves the machine): `localhost` is refused for what it resolves to.
    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_to_loopback() {
        let err = match PublicOnly
            .resolve(Name::from_str("localhost").unwrap())
            .await
        {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let refused = refused_in(err.as_ref()).expect("a refusal");
        assert!(refused.why.contains("loopback"), "{refused}");
    }
}
