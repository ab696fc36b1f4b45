//! Fresh identifiers in the forms CodePipeline hands out: execution ids, approval tokens and job
//! ids are lowercase UUID v4 strings (the model's patterns for them are
//! `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), and job nonces are short
//! random strings within the model's 1–50 character limit.
//!
//! All of them come from the operating system's random source, so an approval token cannot be
//! guessed from earlier ones: the token is what authorises `PutApprovalResult`.

use uuid::Uuid;

/// A lowercase, hyphenated UUID v4.
fn new_uuid() -> String {
    // `Uuid`'s `Display` is the lowercase hyphenated form, which is what the model's
    // patterns accept; the uppercase form would fail `ValidationException` when sent back.
    Uuid::new_v4().to_string()
}

/// A new pipeline execution id (lowercase UUID v4).
pub fn new_execution_id() -> String {
    new_uuid()
}

/// A new manual-approval token (lowercase UUID v4, random).
pub fn new_approval_token() -> String {
    new_uuid()
}

/// A new job id for `PollForJobs` (lowercase UUID v4).
pub fn new_job_id() -> String {
    new_uuid()
}

/// A new job nonce: 32 random lowercase hex digits (128 bits), within the model's 50-character
/// limit for `nonce`.
pub fn new_nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_lowercase_uuid_v4(s: &str) -> bool {
        let bytes = s.as_bytes();
        s.len() == 36
            && s.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
            })
            && bytes[14] == b'4'
            && matches!(bytes[19], b'8' | b'9' | b'a' | b'b')
    }

    #[test]
    fn execution_ids_approval_tokens_and_job_ids_are_lowercase_uuid_v4() {
        for id in [new_execution_id(), new_approval_token(), new_job_id()] {
            assert!(is_lowercase_uuid_v4(&id), "{id}");
        }
    }

    #[test]
    fn approval_tokens_differ_from_one_call_to_the_next() {
        let tokens: std::collections::HashSet<String> =
            (0..100).map(|_| new_approval_token()).collect();
        assert_eq!(tokens.len(), 100);
    }

    #[test]
    fn nonces_are_non_empty_lowercase_hex_of_at_most_50_characters() {
        let nonce = new_nonce();
        assert!(!nonce.is_empty() && nonce.len() <= 50, "{nonce}");
        assert!(nonce
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_ne!(nonce, new_nonce());
    }
}
