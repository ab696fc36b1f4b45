//! The console's settings (`[console]` in `lockgate.toml`): which proxies' `X-Forwarded-For` is
//! believed, and how many passwords may be checked at once.

use std::num::NonZeroUsize;

use serde::Deserialize;

pub use crate::client::TrustedProxy;

/// The console's settings; every field has a default.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client the
    /// sign-in brake counts against. Default: none, so the TCP peer is always the client.
    pub trusted_proxies: Vec<TrustedProxy>,
    /// How many sign-in passwords are checked (argon2, about 19 MiB and one core each) at the
    /// same time; beyond that a sign-in is answered 429 at once. Default: the number of cores.
    pub signin_concurrency: NonZeroUsize,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            trusted_proxies: Vec::new(),
            signin_concurrency: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        console: ConsoleSettings,
    }

    #[test]
    fn settings_read_from_toml_with_defaults_for_what_is_missing() {
        let f: File =
            toml::from_str("[console]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]")
                .expect("parse");
        assert_eq!(f.console.trusted_proxies.len(), 2);
        assert_eq!(
            f.console.signin_concurrency,
            ConsoleSettings::default().signin_concurrency
        );
        let f: File = toml::from_str("[console]\nsignin_concurrency = 3").expect("parse");
        assert_eq!(f.console.signin_concurrency.get(), 3);
        assert!(f.console.trusted_proxies.is_empty());
    }

    #[test]
    fn zero_concurrency_unknown_keys_and_bad_addresses_are_refused() {
        assert!(toml::from_str::<File>("[console]\nsignin_concurrency = 0").is_err());
        assert!(toml::from_str::<File>("[console]\ntrusted_proxy = []").is_err());
        let err = toml::from_str::<File>("[console]\ntrusted_proxies = [\"proxy.local\"]")
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("proxy.local"), "{err}");
    }
}
