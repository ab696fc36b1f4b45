//! AWS Signature Version 4 verification: turns a signed request into the [`Caller`] it was signed
//! for, or into the error AWS would answer.
//!
//! Both places a signature can travel are accepted: the `Authorization` header
//! (`AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` plus `X-Amz-Date`) and presigned
//! query parameters (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
//! `X-Amz-SignedHeaders`, `X-Amz-Signature`). The canonical request follows the AWS specification
//! for every service but S3: the path is normalised and encoded a second time, the query is sorted
//! and re-encoded, signed header values are trimmed with inner runs of spaces collapsed, and the
//! payload hash is the SHA-256 of the body.
//!
//! An `X-Amz-Security-Token` is signed like any other header but otherwise ignored: Lockgate issues
//! no temporary credentials, and the long-term secret alone decides whether the signature holds.
//!
//! The checks run cheapest first and never touch the credential store for a request that is
//! malformed, scoped to another service or region, or outside the clock-skew window:
//! parse → required signed headers → scope → date → key lookup → signature. The clock is a
//! parameter so tests can pin it.
//!
//! Everything but the signature itself needs only the request head, so [`authenticate_head`] runs
//! those checks before the body is read: a request that is unsigned, or signed with a key nobody
//! holds, is answered without its body ever being buffered. When the client declares the payload
//! hash in `X-Amz-Content-Sha256`, the signature is verified against it before the body too, and
//! [`PendingBody::finish`] only checks that the body hashes to it; otherwise the signature covers
//! the hash of the body, so it can only be checked once the body is in.

use std::time::Duration;

use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use lockgate_model::Caller;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::credentials::{Credential, CredentialsProvider};

/// The only signing algorithm AWS services accept for SigV4.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name a credential scope must name.
pub const SERVICE: &str = "codepipeline";
/// The longest lifetime a presigned request may ask for (seven days), as in AWS.
pub const MAX_PRESIGNED_EXPIRY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// AWS's wording for a signature that does not match; kept verbatim because users search for it.
pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
signature you provided. Check your AWS Secret Access Key and signing method. Consult the service \
documentation for details.";

const TERMINATOR: &str = "aws4_request";
const AMZ_DATE: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// Characters SigV4 leaves unencoded in a query component: the RFC 3986 unreserved set.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// As [`UNRESERVED`], but keeping the path's `/` separators.
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Why a request was not authenticated. Each variant is one AWS error code; the `Display` text is
/// the message sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The signature information is present but malformed or incomplete.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id is not known.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The signature is well-formed but wrong, expired, or scoped to another service or region.
    #[error("{0}")]
    InvalidSignature(String),
}

impl AuthError {
    /// The AWS error code (`__type`) of this error.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    fn mismatch() -> Self {
        AuthError::InvalidSignature(SIGNATURE_MISMATCH.to_owned())
    }
}

/// What the verifier expects of every signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations<'a> {
    /// The region the credential scope must name.
    pub region: &'a str,
    /// How far `X-Amz-Date` may be from the server's clock, either way.
    pub max_clock_skew: Duration,
    /// Headers, lower-case, that the signature must cover besides `host`. awsJson1.1 names the
    /// operation in `X-Amz-Target`: a signature that does not cover it could be sent again
    /// naming another operation.
    pub signed_headers: &'a [&'a str],
}

/// The parts of an HTTP request a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request target as received (path and query still percent-encoded).
    pub uri: &'a Uri,
    /// Every request header.
    pub headers: &'a HeaderMap,
    /// The whole request body.
    pub body: &'a [u8],
}

/// The parts of an HTTP request a signature covers that arrive before the body.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request target as received (path and query still percent-encoded).
    pub uri: &'a Uri,
    /// Every request header.
    pub headers: &'a HeaderMap,
}

impl<'a> SignedRequest<'a> {
    /// The request without its body.
    pub fn head(&self) -> RequestHead<'a> {
        RequestHead {
            method: self.method,
            uri: self.uri,
            headers: self.headers,
        }
    }
}

/// Where the signature travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureLocation {
    /// In the `Authorization` header.
    Header,
    /// In presigned query parameters, valid for the given time after the signing date.
    Query {
        /// `X-Amz-Expires`.
        expires: Duration,
    },
}

/// A parsed, not yet verified, signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Where the signature travelled.
    pub location: SignatureLocation,
    /// The access key id named by the credential.
    pub access_key_id: String,
    /// The credential scope's date, `YYYYMMDD`.
    pub scope_date: String,
    /// The credential scope's region.
    pub scope_region: String,
    /// The credential scope's service.
    pub scope_service: String,
    /// The credential scope's terminator, which must be `aws4_request`.
    pub scope_terminator: String,
    /// The signed header names, lower-case, in the order given.
    pub signed_headers: Vec<String>,
    /// The signature as given (lower-case hex when well-formed).
    pub signature: String,
    /// The request date exactly as sent, `YYYYMMDD'T'HHMMSS'Z'`.
    pub amz_date: String,
    /// The request date.
    pub signed_at: OffsetDateTime,
}

/// Verifies the request's signature and returns the caller it authenticates.
pub async fn authenticate(
    request: &SignedRequest<'_>,
    credentials: &dyn CredentialsProvider,
    expect: &Expectations<'_>,
    now: OffsetDateTime,
) -> Result<Caller, AuthError> {
    authenticate_head(&request.head(), credentials, expect, now)
        .await?
        .finish(request)
}

/// Runs every check that needs no body: parse, required signed headers, scope, date, key lookup,
/// and the signature itself when `X-Amz-Content-Sha256` declares the payload hash. The body is
/// checked afterwards with [`PendingBody::finish`].
pub async fn authenticate_head(
    head: &RequestHead<'_>,
    credentials: &dyn CredentialsProvider,
    expect: &Expectations<'_>,
    now: OffsetDateTime,
) -> Result<PendingBody, AuthError> {
    let authorization = Authorization::parse_head(head)?;
    authorization.check_signed_headers(expect.signed_headers)?;
    authorization.check_scope(expect.region)?;
    authorization.check_date(now, expect.max_clock_skew)?;
    let credential = credentials
        .lookup(&authorization.access_key_id)
        .await
        .ok_or(AuthError::UnrecognizedClient)?;
    let declared_payload = match head.headers.get("x-amz-content-sha256") {
        None => None,
        Some(value) if is_sha256_hex(value.as_bytes()) => {
            let declared = String::from_utf8_lossy(value.as_bytes()).into_owned();
            authorization.verify_signature(head, &declared, &credential.secret_access_key)?;
            Some(declared)
        }
        // `UNSIGNED-PAYLOAD` and the streaming forms are S3's; no body can hash to them.
        Some(_) => return Err(payload_hash_mismatch()),
    };
    Ok(PendingBody {
        authorization,
        credential,
        declared_payload,
    })
}

/// A request whose signature passed every check that could be made before its body arrived.
pub struct PendingBody {
    authorization: Authorization,
    credential: Credential,
    /// The `X-Amz-Content-Sha256` the signature was already verified against, if any.
    declared_payload: Option<String>,
}

// Hand-written so that the secret it holds never reaches a log line.
impl std::fmt::Debug for PendingBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingBody")
            .field("access_key_id", &self.authorization.access_key_id)
            .field("declared_payload", &self.declared_payload)
            .finish_non_exhaustive()
    }
}

impl PendingBody {
    /// Completes the verification with the body: it must hash to the declared payload hash, or,
    /// when none was declared, the signature must hold over the body's hash.
    pub fn finish(self, request: &SignedRequest<'_>) -> Result<Caller, AuthError> {
        let body_hash = Hex::sha256(request.body);
        let body_hash = body_hash.as_str();
        match &self.declared_payload {
            Some(declared) if declared.eq_ignore_ascii_case(body_hash) => {}
            Some(_) => return Err(payload_hash_mismatch()),
            None => self.authorization.verify_signature(
                &request.head(),
                body_hash,
                &self.credential.secret_access_key,
            )?,
        }
        Ok(self.credential.caller)
    }
}

fn payload_hash_mismatch() -> AuthError {
    AuthError::InvalidSignature(
        "The provided 'x-amz-content-sha256' header does not match what was computed.".to_owned(),
    )
}

fn is_sha256_hex(value: &[u8]) -> bool {
    value.len() == 64 && value.iter().all(u8::is_ascii_hexdigit)
}

impl Authorization {
    /// Finds and parses the signature of `request`, from its `Authorization` header or its query.
    pub fn parse(request: &SignedRequest<'_>) -> Result<Self, AuthError> {
        Self::parse_head(&request.head())
    }

    /// As [`Authorization::parse`], from the request head alone.
    pub fn parse_head(request: &RequestHead<'_>) -> Result<Self, AuthError> {
        let query = parse_query(request.uri.query().unwrap_or(""));
        let presigned = query.iter().any(|(k, _)| {
            matches!(
                k.as_str(),
                "X-Amz-Algorithm" | "X-Amz-Credential" | "X-Amz-Signature"
            )
        });
        let header = request.headers.get(http::header::AUTHORIZATION);
        match (header, presigned) {
            (Some(_), true) => Err(AuthError::IncompleteSignature(
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as \
                 HTTP header."
                    .to_owned(),
            )),
            (Some(value), false) => {
                let value = value.to_str().map_err(|_| {
                    AuthError::IncompleteSignature(
                        "The Authorization header is not valid ASCII.".to_owned(),
                    )
                })?;
                Self::parse_header(value, request.headers)
            }
            (None, true) => Self::parse_query_params(&query),
            (None, false) => Err(AuthError::MissingAuthenticationToken),
        }
    }

    fn parse_header(value: &str, headers: &HeaderMap) -> Result<Self, AuthError> {
        let value = value.trim();
        let (algorithm, rest) = value.split_once(' ').unwrap_or((value, ""));
        if algorithm != ALGORITHM {
            return Err(AuthError::IncompleteSignature(format!(
                "Unsupported AWS 'algorithm': '{}'; only '{ALGORITHM}' is accepted.",
                truncate(algorithm)
            )));
        }
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for pair in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, val)) = pair.split_once('=') else {
                return Err(AuthError::IncompleteSignature(format!(
                    "'{}' not a valid key=value pair (missing equal-sign) in Authorization header.",
                    truncate(pair)
                )));
            };
            match key.trim() {
                "Credential" => credential = Some(val.trim()),
                "SignedHeaders" => signed_headers = Some(val.trim()),
                "Signature" => signature = Some(val.trim()),
                // AWS ignores parameters it does not know; so do we.
                _ => {}
            }
        }
        let mut missing = String::new();
        for (name, present) in [
            ("Credential", credential.is_some()),
            ("Signature", signature.is_some()),
            ("SignedHeaders", signed_headers.is_some()),
        ] {
            if !present {
                missing.push_str(&format!(
                    "Authorization header requires '{name}' parameter. "
                ));
            }
        }
        if !headers.contains_key("x-amz-date") {
            missing.push_str("Authorization header requires existence of a 'X-Amz-Date' header. ");
        }
        let (Some(credential), Some(signed_headers), Some(signature), Some(date)) = (
            credential,
            signed_headers,
            signature,
            headers.get("x-amz-date"),
        ) else {
            return Err(AuthError::IncompleteSignature(
                missing.trim_end().to_owned(),
            ));
        };
        let date = date.to_str().unwrap_or_default().trim();
        Self::build(
            SignatureLocation::Header,
            credential,
            signed_headers,
            signature,
            date,
        )
    }

    fn parse_query_params(query: &[(String, String)]) -> Result<Self, AuthError> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let (
            Some(algorithm),
            Some(credential),
            Some(date),
            Some(expires),
            Some(signed_headers),
            Some(signature),
        ) = (
            get("X-Amz-Algorithm"),
            get("X-Amz-Credential"),
            get("X-Amz-Date"),
            get("X-Amz-Expires"),
            get("X-Amz-SignedHeaders"),
            get("X-Amz-Signature"),
        )
        else {
            return Err(AuthError::IncompleteSignature(
                "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', \
                 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', 'X-Amz-Expires'. \
                 Re-examine the query-string parameters."
                    .to_owned(),
            ));
        };
        if algorithm != ALGORITHM {
            return Err(AuthError::IncompleteSignature(format!(
                "Unsupported AWS 'algorithm': '{}'; only '{ALGORITHM}' is accepted.",
                truncate(algorithm)
            )));
        }
        let expires = expires
            .parse::<u64>()
            .ok()
            .filter(|secs| *secs > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                AuthError::IncompleteSignature(
                    "X-Amz-Expires should be a number of seconds greater than 0.".to_owned(),
                )
            })?;
        if expires > MAX_PRESIGNED_EXPIRY {
            return Err(AuthError::IncompleteSignature(format!(
                "X-Amz-Expires must be less than a week (in seconds) that is {}.",
                MAX_PRESIGNED_EXPIRY.as_secs()
            )));
        }
        Self::build(
            SignatureLocation::Query { expires },
            credential,
            signed_headers,
            signature,
            date,
        )
    }

    fn build(
        location: SignatureLocation,
        credential: &str,
        signed_headers: &str,
        signature: &str,
        amz_date: &str,
    ) -> Result<Self, AuthError> {
        let parts: Vec<&str> = credential.split('/').collect();
        let [access_key_id, scope_date, region, service, terminator] = parts[..] else {
            return Err(AuthError::IncompleteSignature(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. \
                 keyid/date/region/service/term, got '{}'",
                truncate(credential)
            )));
        };
        if access_key_id.is_empty() {
            return Err(AuthError::IncompleteSignature(
                "Credential names no access key id.".to_owned(),
            ));
        }
        let signed_at = PrimitiveDateTime::parse(amz_date, AMZ_DATE)
            .map(PrimitiveDateTime::assume_utc)
            .map_err(|_| {
                AuthError::IncompleteSignature(format!(
                    "Date must be in ISO-8601 'basic format'. Got '{}'. See \
                     http://en.wikipedia.org/wiki/ISO_8601",
                    truncate(amz_date)
                ))
            })?;
        let signed_headers: Vec<String> = signed_headers
            .split(';')
            .filter(|h| !h.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        if !signed_headers.iter().any(|h| h == "host") {
            return Err(AuthError::IncompleteSignature(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
                    .to_owned(),
            ));
        }
        Ok(Authorization {
            location,
            access_key_id: access_key_id.to_owned(),
            scope_date: scope_date.to_owned(),
            scope_region: region.to_owned(),
            scope_service: service.to_owned(),
            scope_terminator: terminator.to_owned(),
            signed_headers,
            signature: signature.to_owned(),
            amz_date: amz_date.to_owned(),
            signed_at,
        })
    }

    /// Checks that the signature covers every header in `required`. Every AWS SDK and the AWS CLI
    /// sign `X-Amz-Target`; a signature that leaves out a header naming the operation could be
    /// replayed with another operation.
    pub fn check_signed_headers(&self, required: &[&str]) -> Result<(), AuthError> {
        for name in required {
            if !self.signed_headers.iter().any(|h| h == name) {
                let list = match self.location {
                    SignatureLocation::Header => "SignedHeaders of the Authorization header",
                    SignatureLocation::Query { .. } => "the X-Amz-SignedHeaders parameter",
                };
                return Err(AuthError::InvalidSignature(format!(
                    "The signature must cover the '{name}' header, which names the operation: \
                     '{name}' is missing from {list}."
                )));
            }
        }
        Ok(())
    }

    /// Checks the credential scope: this service, `region`, the `aws4_request` terminator and the
    /// same day as the request date.
    pub fn check_scope(&self, region: &str) -> Result<(), AuthError> {
        if self.scope_terminator != TERMINATOR {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
                truncate(&self.scope_terminator)
            )));
        }
        if self.scope_service != SERVICE {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped to correct service: '{SERVICE}'."
            )));
        }
        if self.scope_region != region {
            return Err(AuthError::InvalidSignature(
                "Credential should be scoped to a valid region.".to_owned(),
            ));
        }
        if self.amz_date.get(..8) != Some(self.scope_date.as_str()) {
            return Err(AuthError::InvalidSignature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{}' != '{}', from '{}'.",
                truncate(&self.scope_date),
                self.amz_date.get(..8).unwrap_or(&self.amz_date),
                self.amz_date
            )));
        }
        Ok(())
    }

    /// Checks the request date against `now`: within `max_skew` either way for a header
    /// signature; for a presigned request, not in the future beyond `max_skew` and not past its
    /// expiry.
    pub fn check_date(&self, now: OffsetDateTime, max_skew: Duration) -> Result<(), AuthError> {
        let skew = fmt_skew(max_skew);
        let earliest = now - max_skew;
        let latest = now + max_skew;
        if self.signed_at > latest {
            return Err(AuthError::InvalidSignature(format!(
                "Signature not yet current: {} is still later than {} ({} + {skew})",
                self.amz_date,
                fmt_amz_date(latest),
                fmt_amz_date(now)
            )));
        }
        match self.location {
            SignatureLocation::Header if self.signed_at < earliest => {
                Err(AuthError::InvalidSignature(format!(
                    "Signature expired: {} is now earlier than {} ({} - {skew})",
                    self.amz_date,
                    fmt_amz_date(earliest),
                    fmt_amz_date(now)
                )))
            }
            SignatureLocation::Query { expires } if self.signed_at + expires < now => {
                Err(AuthError::InvalidSignature(format!(
                    "Signature expired: {} is now earlier than {} ({} + {} s)",
                    fmt_amz_date(self.signed_at + expires),
                    fmt_amz_date(now),
                    self.amz_date,
                    expires.as_secs()
                )))
            }
            _ => Ok(()),
        }
    }

    /// Recomputes the signature over `request` (body included) with `secret_access_key` and
    /// compares it, in constant time, with the one given.
    pub fn verify(
        &self,
        request: &SignedRequest<'_>,
        secret_access_key: &str,
    ) -> Result<(), AuthError> {
        let body_hash = Hex::sha256(request.body);
        let body_hash = body_hash.as_str();
        // A client that sends its own payload hash must send the right one: the signature covers
        // the header, and the header must cover the body.
        if let Some(claimed) = request.headers.get("x-amz-content-sha256") {
            if !claimed
                .as_bytes()
                .eq_ignore_ascii_case(body_hash.as_bytes())
            {
                return Err(payload_hash_mismatch());
            }
        }
        self.verify_signature(&request.head(), body_hash, secret_access_key)
    }

    /// Recomputes the signature of `request` with `payload_hash` as the hash of its body and
    /// compares it, in constant time, with the one given.
    fn verify_signature(
        &self,
        request: &RequestHead<'_>,
        payload_hash: &str,
        secret_access_key: &str,
    ) -> Result<(), AuthError> {
        let canonical = self
            .canonical_request(request, payload_hash)
            .ok_or_else(AuthError::mismatch)?;
        let expected = self.sign(&canonical, secret_access_key);
        if expected
            .as_str()
            .as_bytes()
            .ct_eq(self.signature.as_bytes())
            .into()
        {
            Ok(())
        } else {
            Err(AuthError::mismatch())
        }
    }

    /// The canonical request, or `None` when a signed header is absent from the request (which
    /// can only mean the signature does not match).
    fn canonical_request(&self, request: &RequestHead<'_>, payload_hash: &str) -> Option<String> {
        let mut out = String::with_capacity(512);
        out.push_str(request.method.as_str());
        out.push('\n');
        push_canonical_uri(&mut out, request.uri.path());
        out.push('\n');
        let exclude = match self.location {
            SignatureLocation::Header => None,
            SignatureLocation::Query { .. } => Some("X-Amz-Signature"),
        };
        let query = request.uri.query().unwrap_or("");
        if !query.is_empty() {
            out.push_str(&canonical_query(query, exclude));
        }
        out.push('\n');
        for name in &self.signed_headers {
            out.push_str(name);
            out.push(':');
            push_canonical_header_value(&mut out, request, name)?;
            out.push('\n');
        }
        out.push('\n');
        for (n, name) in self.signed_headers.iter().enumerate() {
            if n > 0 {
                out.push(';');
            }
            out.push_str(name);
        }
        out.push('\n');
        out.push_str(payload_hash);
        Some(out)
    }

    fn sign(&self, canonical_request: &str, secret_access_key: &str) -> Hex {
        // `ALGORITHM \n amz_date \n scope \n hex(sha256(canonical request))`, where the scope
        // is `date/region/service/aws4_request`, built in one buffer.
        let mut string_to_sign = String::with_capacity(160);
        for part in [ALGORITHM, "\n", &self.amz_date, "\n"] {
            string_to_sign.push_str(part);
        }
        let scope_start = string_to_sign.len();
        for part in [
            &self.scope_date,
            "/",
            &self.scope_region,
            "/",
            &self.scope_service,
            "/",
            &self.scope_terminator,
        ] {
            string_to_sign.push_str(part);
        }
        let scope_end = string_to_sign.len();
        string_to_sign.push('\n');
        string_to_sign.push_str(Hex::sha256(canonical_request.as_bytes()).as_str());
        let mut mac = signing_mac(secret_access_key, &string_to_sign[scope_start..scope_end]);
        mac.update(string_to_sign.as_bytes());
        Hex::of(&mac.finalize().into_bytes().into())
    }
}

/// How many signing keys each thread keeps: a key is good for one secret, day, region and
/// service, so a handful covers every client a server thread sees in a day.
const KEPT_SIGNING_KEYS: usize = 8;

thread_local! {
    /// The signing keys this thread derived last, newest last: (secret, scope) → an HMAC keyed
    /// with the signing key, cloned for each signature (keying it hashes the key's pads).
    static SIGNING_KEYS: std::cell::RefCell<Vec<(String, String, Hmac<Sha256>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// An HMAC keyed with the SigV4 signing key for `scope` (`date/region/service/aws4_request`),
/// kept per thread so that a client's requests derive the key once a day rather than on every
/// request.
fn signing_mac(secret_access_key: &str, scope: &str) -> Hmac<Sha256> {
    let kept = SIGNING_KEYS.with_borrow(|keys| {
        keys.iter()
            .rev()
            .find(|(secret, kept_scope, _)| secret == secret_access_key && kept_scope == scope)
            .map(|(_, _, mac)| mac.clone())
    });
    if let Some(mac) = kept {
        return mac;
    }
    let mac = Hmac::<Sha256>::new_from_slice(&signing_key(secret_access_key, scope))
        .expect("HMAC takes keys of any length");
    SIGNING_KEYS.with_borrow_mut(|keys| {
        if keys.len() == KEPT_SIGNING_KEYS {
            keys.remove(0);
        }
        keys.push((
            secret_access_key.to_string(),
            scope.to_string(),
            mac.clone(),
        ));
    });
    mac
}

/// The SigV4 signing key for `scope`: four HMACs chained from the secret.
fn signing_key(secret_access_key: &str, scope: &str) -> [u8; 32] {
    let mut parts = scope.split('/');
    let first = parts.next().unwrap_or_default();
    let mut key = hmac(
        format!("AWS4{secret_access_key}").as_bytes(),
        first.as_bytes(),
    );
    for part in parts {
        key = hmac(&key, part.as_bytes());
    }
    key
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A SHA-256 digest (or HMAC) in lowercase hex, kept on the stack: signatures and payload
/// hashes are compared and concatenated as text on every request.
struct Hex([u8; 64]);

impl Hex {
    /// The SHA-256 of `data`, in hex: a payload hash, or the hash of a canonical request.
    fn sha256(data: &[u8]) -> Hex {
        Hex::of(&Sha256::digest(data).into())
    }

    fn of(digest: &[u8; 32]) -> Hex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, byte) in out.chunks_exact_mut(2).zip(digest) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        Hex(out)
    }

    fn as_str(&self) -> &str {
        // Hex digits are ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Appends the path, with dot segments and empty segments removed, then percent-encoded a second
/// time as every AWS service but S3 expects.
fn push_canonical_uri(out: &mut String, path: &str) {
    // The path every SDK sends (`/`, or segments of unreserved characters) is its own canonical
    // form; only other paths are normalised and encoded.
    if is_canonical_path(path) {
        out.push_str(path);
        return;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut normalized = format!("/{}", segments.join("/"));
    let ends_with_slash = ["/", "/.", "/.."].iter().any(|s| path.ends_with(s));
    if ends_with_slash && !normalized.ends_with('/') {
        normalized.push('/');
    }
    out.extend(utf8_percent_encode(&normalized, UNRESERVED_AND_SLASH));
}

/// Whether normalising and encoding `path` would leave it unchanged: it starts with `/`, holds
/// only unreserved characters and `/`, and has no empty (but a trailing), `.` or `..` segment.
fn is_canonical_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        let fine = match segment {
            "" => last,
            "." | ".." => false,
            _ => segment.bytes().all(unreserved),
        };
        if !fine {
            return false;
        }
    }
    true
}

/// Splits a raw query into decoded `(name, value)` pairs, in order.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode_str(key).decode_utf8_lossy().into_owned(),
                percent_decode_str(value).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

/// The query re-encoded with the unreserved set and sorted by name, then value.
fn canonical_query(query: &str, exclude: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = parse_query(query)
        .into_iter()
        .filter(|(key, _)| Some(key.as_str()) != exclude)
        .map(|(key, value)| {
            (
                utf8_percent_encode(&key, UNRESERVED).to_string(),
                utf8_percent_encode(&value, UNRESERVED).to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Appends every value of header `name`, each trimmed with inner runs of spaces collapsed, joined
/// by `,`; `None` when the request has no such header. HTTP/2 carries the host in the
/// `:authority` pseudo-header, which reaches us as the URI's authority rather than as a `host`
/// header.
fn push_canonical_header_value(
    out: &mut String,
    request: &RequestHead<'_>,
    name: &str,
) -> Option<()> {
    let mut values = request.headers.get_all(name).iter().peekable();
    if values.peek().is_none() {
        if name == "host" {
            out.push_str(request.uri.authority()?.as_str());
            return Some(());
        }
        return None;
    }
    for (n, value) in values.enumerate() {
        if n > 0 {
            out.push(',');
        }
        push_collapsed(out, &String::from_utf8_lossy(value.as_bytes()));
    }
    Some(())
}

/// Appends `value` trimmed of spaces, with each inner run of spaces collapsed to one.
fn push_collapsed(out: &mut String, value: &str) {
    let mut first = true;
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        if !first {
            out.push(' ');
        }
        out.push_str(word);
        first = false;
    }
}

/// `YYYYMMDD'T'HHMMSS'Z'`, the form of `X-Amz-Date`.
fn fmt_amz_date(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    utc.format(AMZ_DATE)
        .unwrap_or_else(|_| utc.unix_timestamp().to_string())
}

fn fmt_skew(skew: Duration) -> String {
    let secs = skew.as_secs();
    if secs % 60 == 0 {
        format!("{} min.", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// Caps text echoed back from a request so that an error message stays short.
fn truncate(text: &str) -> &str {
    match text.char_indices().nth(64) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests;
