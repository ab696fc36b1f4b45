//! The console's pipelines page at scale: sign in as the benchmark user (the CSRF token from
//! the sign-in form's cookie, the session from the answer's cookie), then fetch
//! `/console/pipelines`, counting its bytes. Anything unexpected on the way skips the
//! measurement with the reason, since a server build may have no console or another sign-in.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, HOST, SET_COOKIE};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::Full;

use lockgate_loadgen::client::{Conn, Counted};
use lockgate_loadgen::sign::Signer;

/// The sign-in form's double-submit CSRF cookie.
const SIGNIN_CSRF_COOKIE: &str = "lockgate_signin_csrf";
/// The session cookie.
const SESSION_COOKIE: &str = "lockgate_session";

/// One fetch of the pipelines page.
#[derive(Clone, Copy, Debug)]
pub struct PageFetch {
    /// Request sent → last body byte received.
    pub time: Duration,
    /// The body's size.
    pub bytes: u64,
}

/// Signs in as `user` with `password` and fetches `/console/pipelines` `times` times, calling
/// `between` after each fetch (to read the server's memory). `Err` says why the console could
/// not be measured.
pub async fn pipelines_page(
    addr: SocketAddr,
    signer: Arc<Signer>,
    user: &str,
    password: &str,
    times: usize,
    mut between: impl FnMut(),
) -> anyhow::Result<Vec<PageFetch>> {
    let conn = Conn::connect(addr, signer).await?;
    let host = addr.to_string();
    let form = fetch(&conn, &host, Method::GET, "/console/signin", &[], None).await?;
    if form.status != StatusCode::OK {
        return Err(anyhow!("GET /console/signin answered {}", form.status));
    }
    let csrf = cookie(&form.headers, SIGNIN_CSRF_COOKIE)
        .ok_or_else(|| anyhow!("the sign-in form set no {SIGNIN_CSRF_COOKIE} cookie"))?;
    let body = format!(
        "username={}&password={}&csrf_token={}",
        form_encode(user),
        form_encode(password),
        form_encode(&csrf)
    );
    let signed_in = fetch(
        &conn,
        &host,
        Method::POST,
        "/console/signin",
        &[(COOKIE.as_str(), format!("{SIGNIN_CSRF_COOKIE}={csrf}"))],
        Some(body),
    )
    .await?;
    let session = cookie(&signed_in.headers, SESSION_COOKIE).ok_or_else(|| {
        anyhow!(
            "signing in answered {} without a {SESSION_COOKIE} cookie",
            signed_in.status
        )
    })?;
    let mut fetches = Vec::with_capacity(times);
    for _ in 0..times {
        let started = Instant::now();
        let page = fetch(
            &conn,
            &host,
            Method::GET,
            "/console/pipelines",
            &[(COOKIE.as_str(), format!("{SESSION_COOKIE}={session}"))],
            None,
        )
        .await?;
        let time = started.elapsed();
        if page.status != StatusCode::OK {
            return Err(anyhow!("GET /console/pipelines answered {}", page.status));
        }
        fetches.push(PageFetch {
            time,
            bytes: page.body_bytes,
        });
        between();
    }
    Ok(fetches)
}

async fn fetch(
    conn: &Conn,
    host: &str,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    form: Option<String>,
) -> anyhow::Result<Counted> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, host);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if form.is_some() {
        request = request.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let request = request.body(Full::new(Bytes::from(form.unwrap_or_default())))?;
    conn.fetch_counting(request)
        .await
        .with_context(|| format!("fetching {path}"))
}

/// The value a `Set-Cookie` header gives the cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let pair = v.to_str().ok()?.split(';').next()?;
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name && !value.is_empty()).then(|| value.trim().to_owned())
    })
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(
            form_encode("lockgate-bench-password"),
            "lockgate-bench-password"
        );
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn the_cookie_value_is_read_from_set_cookie() {
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, "other=1; Path=/".parse().unwrap());
        headers.append(
            SET_COOKIE,
            "lockgate_session=abc123; Path=/; HttpOnly".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc123"));
        assert_eq!(cookie(&headers, SIGNIN_CSRF_COOKIE), None);
    }
}
