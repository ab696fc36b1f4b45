//! SigV4 as the API receives it: `Authorization::parse` on the request's `Authorization` header
//! or presigned query, then the scope and date checks and the signature recomputation.
//!
//! An input is text lines: the request target (path and query), the `Authorization` header's
//! value (an empty line for none), then more `name: value` headers up to an empty line, and the
//! body after it. Invariant: every step answers `Ok` or an `AuthError` without panicking.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use lockgate_api::sigv4::{Authorization, SignedRequest};
use time::macros::datetime;

use crate::Reached;

/// Fuzzes SigV4 parsing and verification.
pub fn sigv4_request(data: &[u8]) -> Reached {
    let (target, rest) = split_line(data);
    let (authorization, rest) = split_line(rest);
    // The headers end at the first empty line; an input that ends first has no body.
    let (header_lines, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(0) => (&[][..], &rest[1..]),
        _ => match rest.windows(2).position(|w| w == b"\n\n") {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => (rest, &[][..]),
        },
    };
    let Ok(uri) = Uri::try_from(target) else {
        return Reached::Layout;
    };
    let mut headers = HeaderMap::new();
    if !authorization.is_empty() {
        let Ok(value) = HeaderValue::from_bytes(authorization) else {
            return Reached::Layout;
        };
        headers.insert(http::header::AUTHORIZATION, value);
    }
    for line in header_lines
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Reached::Layout;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line[..colon].trim_ascii()),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            return Reached::Layout;
        };
        headers.append(name, value);
    }
    let request = SignedRequest {
        method: &Method::POST,
        uri: &uri,
        headers: &headers,
        body,
    };
    let Ok(authorization) = Authorization::parse(&request) else {
        return Reached::Refused;
    };
    // Every check runs whatever the one before said, so each sees every parsed signature.
    let scope = authorization.check_scope("us-east-1");
    // A fixed clock: the seeds were signed at this moment.
    let now = datetime!(2026-11-30 12:00:00 UTC);
    let date = authorization.check_date(now, Duration::from_secs(300));
    let signature = authorization.verify(&request, SECRET_ACCESS_KEY);
    if scope.is_ok() && date.is_ok() && signature.is_ok() {
        Reached::Accepted
    } else {
        Reached::Refused
    }
}

/// The first line of `data` and what follows its newline.
fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// The secret the seeds were signed with (by botocore, for the access key
/// `AKIALOCKGATEFUZZ0001`).
const SECRET_ACCESS_KEY: &str = "lockgate/fuzz/SECRET/key/0123456789abcdef";
