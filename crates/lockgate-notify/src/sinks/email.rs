//! Email through SMTP (`lettre`): plain, STARTTLS or implicit TLS, with optional credentials.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{ConfigError, SmtpConfig, SmtpSecurity, SubscriptionConfig};
use crate::message::Message;

/// The SMTP transport and sender address.
pub(super) struct EmailSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl EmailSink {
    pub(super) fn new(cfg: &SmtpConfig, timeout: Duration) -> Result<EmailSink, ConfigError> {
        let tls_error = |e: lettre::transport::smtp::Error| {
            ConfigError(format!("[smtp] cannot set up TLS for {}: {e}", cfg.host))
        };
        let builder = match cfg.security {
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            }
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)
                    .map_err(tls_error)?
            }
            SmtpSecurity::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host).map_err(tls_error)?
            }
        };
        let mut builder = builder.port(cfg.port()).timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_string(),
            ));
        }
        let from = cfg
            .from
            .parse()
            .map_err(|e| ConfigError(format!("[smtp] from {:?}: {e}", cfg.from)))?;
        Ok(EmailSink {
            transport: builder.build(),
            from,
        })
    }

    pub(super) async fn send(
        &self,
        sub: &SubscriptionConfig,
        message: &Message,
    ) -> Result<(), String> {
        let to: Mailbox = sub
            .endpoint
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|e| format!("bad recipient address: {e}"))?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(message.text.clone())
            .map_err(|e| format!("cannot build the email: {e}"))?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}
