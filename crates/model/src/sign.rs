//! Webhook signatures: `X-Borderwatch-Signature: sha256=<hex HMAC-SHA256 of the body>`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "X-Borderwatch-Signature";
pub const EVENT_ID_HEADER: &str = "X-Borderwatch-Event-Id";

/// The header value for `body` signed with `secret`.
pub fn sign_body(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a receiver runs: true when `header` is the signature of `body` under `secret`,
/// compared in constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac takes any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_published_hmac_sha256_vector() {
        // RFC 4231 test case 2.
        let sig = sign_body(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify_signature(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig
        ));
        assert!(!verify_signature(
            b"Jefe",
            b"what do ya want for nothing!",
            &sig
        ));
        assert!(!verify_signature(
            b"other",
            b"what do ya want for nothing?",
            &sig
        ));
    }
}
