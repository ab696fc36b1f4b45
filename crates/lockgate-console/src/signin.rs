//! Signing in and out.
//!
//! A sign-in first takes one of a few permits for password checks (none free: 429 at once, and
//! nothing is counted), then reserves its attempt with the
//! [`SignInBrake`](crate::brake::SignInBrake), by user name and client address, which counts it
//! as a failure before the password is looked at. The password is checked with argon2 on a
//! blocking thread that holds the permit until it is done; an unknown user name is checked
//! against a fixed dummy hash so that it takes as long as a wrong password and does not reveal
//! which names exist. Only a right password takes the attempt back.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use axum_extra::extract::cookie::Cookie;
use axum_extra::extract::CookieJar;
use maud::html;
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;

use crate::auth::{cookie, is_tls, see_other, SignedIn, SESSION_COOKIE};
use crate::brake::Held;
use crate::client::ClientAddress;
use crate::markup::{self, Page};
use crate::session::now_millis;
use crate::Console;

/// The double-submit CSRF cookie of the sign-in form.
const SIGNIN_CSRF_COOKIE: &str = "lockgate_signin_csrf";

/// A valid argon2 hash of a random password, verified against when the user name is unknown.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    argon2::Argon2::default()
        .hash_password(
            crate::csrf::random_token().as_bytes(),
            &SaltString::generate(&mut OsRng),
        )
        .map(|h| h.to_string())
        .unwrap_or_default()
});

/// The query of the sign-in page.
#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignInForm {
    username: String,
    password: String,
    next: Option<String>,
    csrf_token: Option<String>,
}

/// What a sign-in refused because every password-check permit is taken says.
const BUSY: &str = "Lockgate is busy checking other sign-ins; try again in a moment.";

/// Only plain local console paths are followed after sign-in: no open redirect to another site,
/// and nothing a `Location` header cannot carry (control characters such as CR/LF, spaces,
/// non-ASCII), since the path is sent back verbatim.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/console/")
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_string()
        }
        _ => "/console/pipelines".to_string(),
    }
}

/// Tells the browser how long to wait before trying again.
fn retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

fn page(
    status: StatusCode,
    jar: CookieJar,
    tls: bool,
    next: &str,
    username: &str,
    alert: Option<&str>,
) -> Response {
    let token = crate::csrf::random_token();
    let jar = jar.add(cookie(SIGNIN_CSRF_COOKIE, token.clone(), tls));
    let body = html! {
        section.signin {
            h1 { "Sign in to Lockgate" }
            @if let Some(a) = alert { (markup::notice(a, true)) }
            form method="post" action="/console/signin" {
                input type="hidden" name="csrf_token" value=(token);
                input type="hidden" name="next" value=(next);
                label for="username" { "User name" }
                input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button.primary type="submit" { "Sign in" }
            }
            p.hint { "Users and passwords are made with " code { "lockgate user add NAME" } "." }
        }
    };
    let doc = markup::layout(
        Page {
            title: "Sign in",
            ..Page::default()
        },
        body,
    );
    (status, jar, doc).into_response()
}

/// `GET /console/signin`: the form (or straight on, when already signed in).
pub async fn form(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    jar: CookieJar,
    Query(q): Query<SignInQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if let Some(c) = jar.get(SESSION_COOKIE) {
        if let Ok(Some(s)) = console.sessions.find(c.value(), now_millis()).await {
            if console.current_user(c.value(), &s.user).await.is_some() {
                return see_other(&next);
            }
        }
    }
    page(StatusCode::OK, jar, is_tls(&headers), &next, "", None)
}

/// Whether `password` matches `hash` (an unknown user's `None` is checked against the dummy
/// hash and never matches). The blocking thread holds `permit` until argon2 is done, so the
/// bound on concurrent checks holds even when the client hangs up halfway.
async fn password_matches(
    hash: Option<String>,
    password: String,
    permit: OwnedSemaphorePermit,
) -> bool {
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        PasswordHash::new(&hash)
            .map(|h| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    known && ok
}

/// `POST /console/signin`: checks the password and starts a session.
pub async fn submit(
    State(console): State<Arc<Console>>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    jar: CookieJar,
    Form(f): Form<SignInForm>,
) -> Response {
    let tls = is_tls(&headers);
    let next = safe_next(f.next.as_deref());
    let expected = jar
        .get(SIGNIN_CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if !crate::csrf::matches(&expected, f.csrf_token.as_deref()) {
        return page(
            StatusCode::FORBIDDEN,
            jar,
            tls,
            &next,
            &f.username,
            Some("The sign-in form expired or did not come from this page. Please try again."),
        );
    }
    let name = f.username.trim().to_string();
    // Refused before the brake sees it: a busy server learns nothing about the password, so this
    // is not a failed attempt.
    let Ok(permit) = console.signin_permits.clone().try_acquire_owned() else {
        tracing::warn!(user = %name, %client, "console sign-in refused: every password check is in use");
        let page = page(
            StatusCode::TOO_MANY_REQUESTS,
            jar,
            tls,
            &next,
            &name,
            Some(BUSY),
        );
        return retry_after(page, 1);
    };
    let attempt = match console.brake.reserve(&name, client, Instant::now()) {
        Ok(attempt) => attempt,
        Err(held) => {
            let (wait, whose, why) = match held {
                Held::Name(wait) => (wait, "for this user", "user name"),
                Held::Address(wait) => (wait, "from your network address", "client address"),
            };
            let minutes = wait.as_secs().div_ceil(60).max(1);
            tracing::warn!(user = %name, %client, held = why, "console sign-in refused: too many failed attempts");
            let page = page(
                StatusCode::TOO_MANY_REQUESTS,
                jar,
                tls,
                &next,
                &name,
                Some(&format!(
                    "Too many failed sign-in attempts {whose}. Try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                )),
            );
            return retry_after(page, wait.as_secs());
        }
    };
    let user = match console.users.by_name(&name).await {
        Ok(u) => u,
        Err(e) => {
            // Nothing was learnt about the password, so the attempt does not count.
            console.brake.withdraw(attempt);
            tracing::error!(error = %e, "could not read users for a console sign-in");
            return markup::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "Something went wrong",
                "Lockgate could not check your password. Try again in a moment.",
            );
        }
    };
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let matched = password_matches(hash, f.password, permit).await;
    // `password_matches` is false for an unknown user, so `user` is only kept when it exists.
    let Some(user) = user.filter(|_| matched) else {
        // The attempt was counted as a failure when it was reserved; it stays counted.
        drop(attempt);
        tracing::info!(user = %name, %client, "console sign-in failed");
        return page(
            StatusCode::UNAUTHORIZED,
            jar,
            tls,
            &next,
            &name,
            Some("Incorrect user name or password."),
        );
    };
    console.brake.succeeded(attempt);
    match console.sessions.create(&user.name, now_millis()).await {
        Ok((value, _)) => {
            tracing::info!(user = %user.name, %client, "console sign-in");
            let jar = jar
                .remove(Cookie::build(SIGNIN_CSRF_COOKIE).path("/"))
                .add(cookie(SESSION_COOKIE, value, tls));
            (jar, see_other(&next)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "could not store a console session");
            markup::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "Something went wrong",
                "Lockgate could not start your session. Try again in a moment.",
            )
        }
    }
}

/// The sign-out form's fields.
#[derive(Deserialize)]
pub struct SignOutForm {
    csrf_token: Option<String>,
}

/// `POST /console/signout`: ends the session.
pub async fn sign_out(
    State(console): State<Arc<Console>>,
    user: SignedIn,
    jar: CookieJar,
    Form(f): Form<SignOutForm>,
) -> Response {
    if let Err(r) = user.check_csrf(f.csrf_token.as_deref()) {
        return r;
    }
    if let Err(e) = console.sessions.end(&user.cookie).await {
        tracing::error!(error = %e, "could not end a console session");
    }
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    (jar, see_other("/console/signin")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_console_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next(Some("/console/pipelines/P")),
            "/console/pipelines/P"
        );
        assert_eq!(
            safe_next(Some("https://evil.example")),
            "/console/pipelines"
        );
        assert_eq!(
            safe_next(Some("//evil.example/console/")),
            "/console/pipelines"
        );
        assert_eq!(safe_next(Some("/console/\\evil")), "/console/pipelines");
        for bad in [
            "/console/pipelines\r\nSet-Cookie: x=1",
            "/console/pipelines\nx",
            "/console/a b",
            "/console/\u{7f}",
            "/console/é",
        ] {
            assert_eq!(safe_next(Some(bad)), "/console/pipelines", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/console/pipelines");
    }
}
