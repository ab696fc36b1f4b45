//! The page layout and the small pieces of HTML every page shares: status words, times, links.
//!
//! maud escapes every interpolated value, so names, comments and summaries are always text.
//! Links are the one place a value becomes an attribute that does something: only `http` and
//! `https` URLs are made clickable.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lockgate_shapes::Timestamp;
use maud::{html, Markup, DOCTYPE};

use crate::auth::SignedIn;

/// What a page puts in the layout besides its body.
#[derive(Default)]
pub struct Page<'a> {
    /// The `<title>` (before " | Lockgate").
    pub title: &'a str,
    /// The signed-in user, for the header.
    pub user: Option<&'a SignedIn>,
    /// The server-sent events URL that announces changes to this page's live region.
    pub live_events: Option<String>,
    /// The URL the live region is re-read from.
    pub live_page: Option<String>,
    /// Re-read the live region this often too (milliseconds), for what changes without an
    /// engine commit (a running action's log), until it holds a `[data-live-done]` element.
    pub live_poll_ms: Option<u32>,
}

/// The whole document around `body`.
pub fn layout(page: Page<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.title) " | Lockgate" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body data-live-events=[page.live_events.as_deref()] data-live-page=[page.live_page.as_deref()] data-live-poll=[page.live_poll_ms] {
                header.topbar {
                    a.brand href="/console/pipelines" { "Lockgate" }
                    @if let Some(u) = page.user {
                        nav aria-label="Main" {
                            a href="/console/pipelines" { "Pipelines" }
                            " "
                            a href="/console/notifications" { "Notifications" }
                        }
                        div.whoami {
                            span data-testid="signed-in-user" title=(u.user.caller().arn()) { (u.user.name) }
                            form method="post" action="/console/signout" {
                                input type="hidden" name=(crate::csrf::FIELD) value=(u.session.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A complete HTML response.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

/// A page that only explains what went wrong.
pub fn error_page(
    status: StatusCode,
    user: Option<&SignedIn>,
    title: &str,
    message: &str,
) -> Response {
    let body = html! {
        h1 { (title) }
        p.alert.alert-error role="alert" { (message) }
        p { a href="/console/pipelines" { "Back to all pipelines" } }
    };
    respond(
        status,
        layout(
            Page {
                title,
                user,
                ..Page::default()
            },
            body,
        ),
    )
}

/// CodePipeline's words for a status (`InProgress` → "In progress"; the others as they are).
pub fn status_word(status: &str) -> &str {
    match status {
        "InProgress" => "In progress",
        other => other,
    }
}

/// A status badge whose class lets CSS colour it.
pub fn status(status: &str, testid: &str) -> Markup {
    html! {
        span.status.(format!("status-{}", status.to_ascii_lowercase())) data-testid=(testid) {
            (status_word(status))
        }
    }
}

/// `2026-11-25 16:21:05 UTC` in a `<time>` element (or a dash when there is no time).
pub fn time(ts: Option<Timestamp>) -> Markup {
    match ts.and_then(|t| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0) * 1_000_000).ok()
    }) {
        Some(t) => {
            let iso = t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let shown = t
                .format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
                ))
                .unwrap_or_default();
            html! { time datetime=(iso) { (shown) } }
        }
        None => html! { "—" },
    }
}

/// Whether a URL may become a link (http and https only: no `javascript:` or `data:`).
pub fn is_web_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// `text` linking to `url` in a new tab when `url` is a web URL; otherwise the URL as text.
pub fn external_link(url: &str, text: &str) -> Markup {
    if is_web_url(url) {
        html! { a href=(url) target="_blank" rel="noopener" { (text) } }
    } else {
        html! { span.unlinked title="Only http and https links are opened" { (url) } }
    }
}

/// The signed-in user's CSRF token as a hidden form field.
pub fn csrf_field(user: &SignedIn) -> Markup {
    html! { input type="hidden" name=(crate::csrf::FIELD) value=(user.session.csrf); }
}

/// The user name in an ARN like `arn:aws:iam::123456789012:user/Alice` (the whole ARN otherwise).
pub fn user_name(arn: &str) -> &str {
    arn.rsplit_once(":user/").map_or(arn, |(_, n)| n)
}

/// A short notice shown above a page's content.
pub fn notice(text: &str, error: bool) -> Markup {
    if error {
        html! { p.alert.alert-error role="alert" { (text) } }
    } else {
        html! { p.alert.alert-ok role="status" { (text) } }
    }
}

/// The percent-encoded form of a path segment (pipeline, stage and action names are plain, but
/// encoding keeps any name a valid URL).
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// Everything but RFC 3986's unreserved characters is encoded in a path segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_become_links() {
        assert!(is_web_url("https://example.com/x"));
        assert!(is_web_url("HTTP://example.com"));
        assert!(!is_web_url("javascript:alert(1)"));
        assert!(!is_web_url("data:text/html,<script>"));
        let link = external_link("javascript:alert(1)", "Manual approval").into_string();
        assert!(!link.contains("href"), "{link}");
    }

    #[test]
    fn user_data_is_escaped() {
        let m = html! { p { ("<script>alert(1)</script>") } }.into_string();
        assert_eq!(m, "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
    }

    #[test]
    fn status_words_follow_codepipeline() {
        assert_eq!(status_word("InProgress"), "In progress");
        assert_eq!(status_word("Succeeded"), "Succeeded");
        assert_eq!(user_name("arn:aws:iam::123456789012:user/Alice"), "Alice");
    }
}
