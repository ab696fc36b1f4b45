//! Fresh identifiers in the forms CodePipeline hands out: execution ids, approval tokens and job
//! ids are lowercase UUID v4 strings (the model's patterns for them are
//! `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), and job nonces are short
//! random strings within the model's 1–50 character limit.
//!
//! All of them come from the operating system's random source, so an approval token cannot be
//! guessed from earlier ones: the token is what authorises `PutApprovalResult`.

use uuid::Uuid;

/// Defines a string id newtype: distinct types keep two ids of different kinds from being
/// passed in each other's place. Serialised as the bare string (`serde(transparent)`), so a
/// stored or wire value does not change when a `String` field becomes one of these.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

string_id!(
    /// A pipeline's name, unique within the account.
    PipelineName
);
string_id!(
    /// A pipeline execution's id (a lowercase UUID).
    ExecutionId
);
string_id!(
    /// An action execution's id (a lowercase UUID).
    ActionExecutionId
);
string_id!(
    /// A job's id, as PollForJobs hands it out (a lowercase UUID).
    JobId
);
string_id!(
    /// A manual approval's token: what authorises PutApprovalResult (a lowercase UUID).
    ApprovalToken
);

impl ApprovalToken {
    /// Whether `presented` is this token, compared in constant time so that how long a wrong
    /// guess takes says nothing about how much of it was right.
    pub fn matches(&self, presented: &ApprovalToken) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(presented.0.as_bytes()).into()
    }
}

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
    fn ids_serialise_as_bare_strings() {
        let id = ExecutionId::from("00000000-0000-4000-8000-000000000001");
        let json = serde_json::to_string(&id).expect("an id serialises");
        assert_eq!(json, "\"00000000-0000-4000-8000-000000000001\"");
        let back: ExecutionId = serde_json::from_str(&json).expect("an id deserialises");
        assert_eq!(back, id);
        assert_eq!(back, *"00000000-0000-4000-8000-000000000001");
    }

    #[test]
    fn approval_tokens_differ_from_one_call_to_the_next() {
        let tokens: std::collections::HashSet<String> =
            (0..100).map(|_| new_approval_token()).collect();
        assert_eq!(tokens.len(), 100);
    }

    #[test]
    fn an_approval_token_matches_only_itself() {
        let token = ApprovalToken::from(new_approval_token());
        assert!(token.matches(&token.clone()));
        assert!(!token.matches(&ApprovalToken::from(new_approval_token())));
        assert!(!token.matches(&ApprovalToken::from(&token.as_str()[..35])));
        assert!(!token.matches(&ApprovalToken::from("")));
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
