//! Webhook signatures, two of them on every POST:
//!
//! - `X-Borderwatch-Signature: sha256=<hex HMAC-SHA256 of the body>`, the original one. It
//!   covers the body only, so a captured POST can be replayed as it is.
//! - Standard Webhooks (<https://www.standardwebhooks.com>): `webhook-id` (the event id, the
//!   same on every retry), `webhook-timestamp` (Unix seconds of the attempt) and
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`. A receiver that
//!   refuses old timestamps and ids it has seen cannot be replayed to.
//!
//! Both are keyed with the subscription secret's bytes as they are.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "X-Borderwatch-Signature";
pub const EVENT_ID_HEADER: &str = "X-Borderwatch-Event-Id";
/// Standard Webhooks' message id: the event id, the same on every retry of a delivery.
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
/// Standard Webhooks' timestamp: Unix seconds when the attempt was signed.
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Standard Webhooks' signature: `v1,<base64>`.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";

/// The HMAC-SHA256 of `id.timestamp.body` under `secret`.
fn standard_mac(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value for message `id` sent at `timestamp` (Unix seconds).
pub fn sign_standard(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = standard_mac(secret, id, timestamp, body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// What a receiver runs: true when one of the space-separated `v1,` signatures in `header`
/// signs `id.timestamp.body` under `secret` (compared in constant time). Checking that
/// `timestamp` is recent and `id` unseen is the receiver's part.
pub fn verify_standard(secret: &[u8], id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    header.split_whitespace().any(|sig| {
        let Some(b64) = sig.strip_prefix("v1,") else {
            return false;
        };
        let Ok(sig) = BASE64.decode(b64) else {
            return false;
        };
        standard_mac(secret, id, timestamp, body)
            .verify_slice(&sig)
            .is_ok()
    })
}

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
    fn standard_signature_matches_the_specs_example() {
        // The example of the Standard Webhooks specification: secret
        // `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw` (the key is the base64 after `whsec_`).
        let key = BASE64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = sign_standard(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        assert!(verify_standard(
            &key,
            id,
            1614265330,
            body,
            &format!("v1,x {sig}")
        ));
        assert!(!verify_standard(&key, id, 1614265331, body, &sig));
        assert!(!verify_standard(&key, "msg_other", 1614265330, body, &sig));
        assert!(!verify_standard(&key, id, 1614265330, b"{}", &sig));
        assert!(!verify_standard(b"other", id, 1614265330, body, &sig));
    }

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
