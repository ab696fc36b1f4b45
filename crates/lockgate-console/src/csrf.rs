//! Random tokens and their constant-time comparison, for session cookies and CSRF tokens.
//!
//! Every state-changing form carries a `csrf_token` field. Signed-in forms echo the session's
//! token; the sign-in form (which has no session yet) echoes a token also set in a short-lived
//! cookie (the double-submit pattern), so another site cannot sign a browser in as its own user.

use rand::RngCore;
use subtle::ConstantTimeEq;

/// The name of the hidden form field that carries the CSRF token.
pub const FIELD: &str = "csrf_token";

/// 256 random bits from the operating system's generator, hex-encoded.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether a submitted token matches the expected one (in constant time; empty never matches).
pub fn matches(expected: &str, submitted: Option<&str>) -> bool {
    match submitted {
        Some(s) if !s.is_empty() && !expected.is_empty() => {
            expected.as_bytes().ct_eq(s.as_bytes()).into()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_64_hex_digits() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn only_the_same_non_empty_token_matches() {
        let t = random_token();
        assert!(matches(&t, Some(&t)));
        assert!(!matches(&t, Some(&random_token())));
        assert!(!matches(&t, None));
        assert!(!matches(&t, Some("")));
        assert!(!matches("", Some("")));
    }
}
