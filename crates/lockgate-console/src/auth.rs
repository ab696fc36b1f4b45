//! [`SignedIn`]: the extractor every console page and form uses. Without a live session it
//! sends the browser to sign in and remembers where it was going; forms also check the CSRF token.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use lockgate_engine::users::UserRecord;
use lockgate_model::Caller;

use crate::markup;
use crate::session::{now_millis, Session};
use crate::Console;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lockgate_session";

/// A request from a signed-in user.
pub struct SignedIn {
    /// The user, as currently known (a removed user is signed out).
    pub user: UserRecord,
    /// The session, with its CSRF token.
    pub session: Session,
    /// The session cookie's value, for signing out.
    pub cookie: String,
}

impl SignedIn {
    /// The caller identity changes run as.
    pub fn caller(&self) -> Caller {
        self.user.caller()
    }

    /// Refuses a form whose CSRF token is not this session's.
    #[allow(clippy::result_large_err, reason = "the error is the response to send")]
    pub fn check_csrf(&self, submitted: Option<&str>) -> Result<(), Response> {
        if crate::csrf::matches(&self.session.csrf, submitted) {
            Ok(())
        } else {
            tracing::warn!(user = %self.user.name, "console form refused: missing or wrong CSRF token");
            Err(markup::error_page(
                StatusCode::FORBIDDEN,
                Some(self),
                "Request refused",
                "This form did not carry a valid CSRF token, so it was not accepted (it may come \
                 from another site, or from a page older than your session). Reload the page and \
                 try again.",
            ))
        }
    }
}

/// Whether the request came over TLS (directly or through a proxy that says so), which makes
/// cookies `Secure`.
pub fn is_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A cookie with the console's attributes: HttpOnly, SameSite=Lax, Path=/, Secure over TLS.
pub fn cookie(name: &'static str, value: String, tls: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(tls)
        .build()
}

/// Where to send someone to sign in so they come back to `parts` afterwards.
fn to_sign_in(parts: &Parts) -> Response {
    let next = if parts.method == Method::GET {
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/console/pipelines".into())
    } else {
        "/console/pipelines".into()
    };
    let encoded = percent_encoding::utf8_percent_encode(&next, percent_encoding::NON_ALPHANUMERIC);
    Redirect::to(&format!("/console/signin?next={encoded}")).into_response()
}

impl FromRequestParts<Arc<Console>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(cookie) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
            return Err(to_sign_in(parts));
        };
        let session = match console.sessions.find(&cookie, now_millis()).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(to_sign_in(parts)),
            Err(e) => {
                tracing::error!(error = %e, "could not read a console session");
                return Err(markup::error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "Something went wrong",
                    "Lockgate could not read your session. Try again in a moment.",
                ));
            }
        };
        let Some(user) = console.current_user(&cookie, &session.user).await else {
            return Err(to_sign_in(parts));
        };
        Ok(SignedIn {
            user,
            session,
            cookie,
        })
    }
}

/// Where [`see_other`] sends the browser when asked for a target no header can carry.
const FALLBACK_LOCATION: &str = "/console/pipelines";

/// A `Location`-only 303 response to a local path (after a form, the browser loads the page
/// with GET). The header value is built here rather than by the response tuple, whose conversion
/// error would answer the 303 without any `Location`: a target that is not a plain local path
/// (control characters such as CR/LF, spaces, non-ASCII, another host) sends the browser to the
/// pipelines list instead.
pub fn see_other(location: &str) -> Response {
    let plain_local_path = location.starts_with('/')
        && !location.starts_with("//")
        && location.bytes().all(|b| b.is_ascii_graphic());
    let location = HeaderValue::from_str(location)
        .ok()
        .filter(|_| plain_local_path)
        .unwrap_or_else(|| {
            tracing::warn!(
                "a redirect target was not a plain local path; sending the pipelines list"
            );
            HeaderValue::from_static(FALLBACK_LOCATION)
        });
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_always_carries_a_location() {
        let r = see_other("/console/pipelines/P?done=approved");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers()[header::LOCATION],
            "/console/pipelines/P?done=approved"
        );
        for bad in [
            "/console/x\r\nSet-Cookie: a=b",
            "/console/\u{7f}",
            "/console/é",
            "//evil.example/",
            "https://evil.example/",
        ] {
            let r = see_other(bad);
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            assert_eq!(r.headers()[header::LOCATION], FALLBACK_LOCATION, "{bad:?}");
            assert!(r.headers().get(header::SET_COOKIE).is_none());
        }
    }
}
