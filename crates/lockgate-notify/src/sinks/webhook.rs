//! Webhooks: an HTTP(S) POST of the message's JSON (or `{"text": ...}` for Slack), signed with
//! an HMAC-SHA256 of the body when the subscription has a `secret`.

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::config::{SubscriptionConfig, WebhookFormat};
use crate::message::Message;

/// The header carrying `sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret>`.
pub const SIGNATURE_HEADER: &str = "X-Lockgate-Signature";
/// The header carrying what the message reports (`approval-needed`, `approved`, ...).
pub const EVENT_HEADER: &str = "X-Lockgate-Event";
/// The header naming the message; the same on every retry, so receivers can drop duplicates.
pub const DELIVERY_HEADER: &str = "X-Lockgate-Delivery";
/// The header carrying when this attempt was sent (seconds since the Unix epoch).
pub const TIMESTAMP_HEADER: &str = "X-Lockgate-Timestamp";

/// The value of [`SIGNATURE_HEADER`] for `body` signed with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts to webhooks through the shared HTTP client.
pub(super) struct WebhookSink {
    client: reqwest::Client,
}

impl WebhookSink {
    pub(super) fn new(client: reqwest::Client) -> WebhookSink {
        WebhookSink { client }
    }

    pub(super) async fn send(
        &self,
        sub: &SubscriptionConfig,
        message: &Message,
        delivery_id: &str,
    ) -> Result<(), String> {
        let url = sub.endpoint.as_deref().unwrap_or_default();
        let body = match sub.format {
            WebhookFormat::Json => serde_json::to_vec(&message.json),
            WebhookFormat::Slack => {
                serde_json::to_vec(&serde_json::json!({ "text": message.chat }))
            }
        }
        .map_err(|e| format!("cannot encode the message: {e}"))?;
        let now = lockgate_model::Clock::now_system(&lockgate_model::SystemClock)
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, message.event)
            .header(DELIVERY_HEADER, delivery_id)
            .header(TIMESTAMP_HEADER, now.to_string());
        if let Some(secret) = &sub.secret {
            request = request.header(
                SIGNATURE_HEADER,
                signature(secret.expose_secret().as_bytes(), &body),
            );
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {}", super::error_chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("POST {url}: HTTP {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
