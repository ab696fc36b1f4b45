//! SigV4 verifier tests: known answers from AWS's signing test suite, requests signed by the real
//! `aws-sigv4` signer, and every rejection the verifier can give.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, Uri};
use lockgate_model::Caller;
use time::OffsetDateTime;

use sha2::{Digest, Sha256};

use super::*;
use crate::credentials::StaticCredentials;
use crate::testing::{request, Signer, ACCESS_KEY_ID, REGION, SECRET};

const FIVE_MINUTES: Duration = Duration::from_secs(300);

fn alice() -> Caller {
    Caller::new("alice", "123456789012")
}

fn credentials() -> StaticCredentials {
    StaticCredentials::new().with_key(ACCESS_KEY_ID, SECRET, alice())
}

/// What the router expects of `req`: awsJson1.1 (`POST /`) must sign `X-Amz-Target`.
fn expectations(req: &http::Request<Vec<u8>>) -> Expectations<'static> {
    Expectations {
        region: REGION,
        max_clock_skew: FIVE_MINUTES,
        signed_headers: if req.uri().path() == "/" {
            &["x-amz-target"]
        } else {
            &[]
        },
    }
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn system_time(at: OffsetDateTime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(at.unix_timestamp() as u64)
}

/// 2026-11-25T12:00:00Z.
const NOON: i64 = 1_795_608_000;

async fn check(req: &http::Request<Vec<u8>>, now: OffsetDateTime) -> Result<Caller, AuthError> {
    let signed = SignedRequest {
        method: req.method(),
        uri: req.uri(),
        headers: req.headers(),
        body: req.body(),
    };
    authenticate(&signed, &credentials(), &expectations(req), now).await
}

fn json_request(body: &[u8]) -> http::Request<Vec<u8>> {
    request(
        "/",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "CodePipeline_20150709.ListPipelines"),
        ],
        body,
    )
}

fn cbor_request(body: &[u8]) -> http::Request<Vec<u8>> {
    request(
        "/service/CodePipeline_20150709/operation/ListPipelines",
        &[
            ("content-type", "application/cbor"),
            ("accept", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
        ],
        body,
    )
}

fn signed_at(mut req: http::Request<Vec<u8>>, signer: Signer) -> http::Request<Vec<u8>> {
    signer.sign(&mut req);
    req
}

fn noon_signer() -> Signer {
    Signer {
        time: system_time(at(NOON)),
        ..Signer::default()
    }
}

// --- Known answers from AWS's SigV4 test suite (aws-signing-test-suite/v4, as shipped with the
// aws-sigv4 crate). Service `service`, so only parsing and the signature itself are checked here.

const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_SCOPE: &str = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

struct Vector {
    name: &'static str,
    method: &'static str,
    path_and_query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    signed_headers: &'static str,
    header_signature: &'static str,
    query_signed_headers: &'static str,
    query_signature: &'static str,
}

const VECTORS: &[Vector] = &[
    Vector {
        name: "get-vanilla",
        method: "GET",
        path_and_query: "/",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        header_signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        query_signed_headers: "host",
        query_signature: "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d",
    },
    Vector {
        name: "get-slash-dot-slash-normalized",
        method: "GET",
        path_and_query: "/./",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        header_signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        query_signed_headers: "host",
        query_signature: "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d",
    },
    Vector {
        name: "get-relative-relative-normalized",
        method: "GET",
        path_and_query: "/example1/example2/../..",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        header_signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        query_signed_headers: "host",
        query_signature: "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d",
    },
    Vector {
        name: "get-slashes-normalized",
        method: "GET",
        path_and_query: "//example//",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        header_signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
        query_signed_headers: "host",
        query_signature: "c1834e8fb0307243711f0f907f6ab7311ed300d87f13792d7ee4da89ab93e082",
    },
    Vector {
        name: "get-unreserved",
        method: "GET",
        path_and_query: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        header_signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
        query_signed_headers: "host",
        query_signature: "95968482db1b9e0fadef6efc1bd24689f77c77d9ef56919c96a28cc92e0d6005",
    },
    Vector {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        path_and_query: "/?Param2=value2&Param1=value1",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        header_signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        query_signed_headers: "host",
        query_signature: "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5",
    },
    Vector {
        name: "get-vanilla-query-unreserved",
        method: "GET",
        path_and_query: "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        header_signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        query_signed_headers: "host",
        query_signature: "8e76a88a7433637b12778d5592799b29ad21ecd6cf6325051c21d86f0acda2bf",
    },
    Vector {
        // The suite writes the key raw (`ሴ`); on the wire it arrives percent-encoded.
        name: "get-vanilla-utf8-query",
        method: "GET",
        path_and_query: "/?%E1%88%B4=bar",
        headers: &[],
        body: "",
        signed_headers: "host;x-amz-date",
        header_signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        query_signed_headers: "host",
        query_signature: "0bdd809b1519ac4f0c1dc3540e2cc46bd0c7f778eda408b2ebf3b913d21ff600",
    },
    Vector {
        name: "get-header-value-trim",
        method: "GET",
        path_and_query: "/",
        headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
        body: "",
        signed_headers: "host;my-header1;my-header2;x-amz-date",
        header_signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        query_signed_headers: "host;my-header1;my-header2",
        query_signature: "e7bb0fd515e125e1aec2ecc4c0c17484fb06f6846b927c35e46005dd3df3acd4",
    },
    Vector {
        name: "get-header-key-duplicate",
        method: "GET",
        path_and_query: "/",
        headers: &[
            ("My-Header1", "value2"),
            ("My-Header1", "value2"),
            ("My-Header1", "value1"),
        ],
        body: "",
        signed_headers: "host;my-header1;x-amz-date",
        header_signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        query_signed_headers: "host;my-header1",
        query_signature: "3349ee0b81b4b589da0ff28a395c3591e04de515651dd74f298fa992d1507a97",
    },
    Vector {
        name: "get-header-value-order",
        method: "GET",
        path_and_query: "/",
        headers: &[
            ("My-Header1", "value4"),
            ("My-Header1", "value1"),
            ("My-Header1", "value3"),
            ("My-Header1", "value2"),
        ],
        body: "",
        signed_headers: "host;my-header1;x-amz-date",
        header_signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
        query_signed_headers: "host;my-header1",
        query_signature: "313720e71ca6202fdcfa9b20f88de01a4eb0638a83c833b1c184359a4eda864e",
    },
    Vector {
        name: "post-x-www-form-urlencoded",
        method: "POST",
        path_and_query: "/",
        headers: &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", "13"),
            (
                "x-amz-content-sha256",
                "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            ),
        ],
        body: "Param1=value1",
        signed_headers: "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
        header_signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
        query_signed_headers: "content-length;content-type;host",
        query_signature: "89a40deed0f26f9461242825a082d2222717248abc7ab41f552ad84a94ad46e9",
    },
];

fn suite_headers(vector: &Vector) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.append("host", "example.amazonaws.com".parse().unwrap());
    for (name, value) in vector.headers {
        if *name == "x-amz-content-sha256" {
            continue;
        }
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    headers
}

fn verify_suite_request(
    vector: &Vector,
    uri: &str,
    headers: &HeaderMap,
    secret: &str,
) -> Result<(), AuthError> {
    let method: Method = vector.method.parse().unwrap();
    let uri: Uri = uri.parse().unwrap();
    let request = SignedRequest {
        method: &method,
        uri: &uri,
        headers,
        body: vector.body.as_bytes(),
    };
    let authorization = Authorization::parse(&request)?;
    assert_eq!(
        authorization.access_key_id, "AKIDEXAMPLE",
        "{}",
        vector.name
    );
    authorization.verify(&request, secret)
}

#[test]
fn header_signatures_from_the_aws_test_suite_verify() {
    for vector in VECTORS {
        let mut headers = suite_headers(vector);
        for (name, value) in vector.headers {
            if *name == "x-amz-content-sha256" {
                headers.append("x-amz-content-sha256", value.parse().unwrap());
            }
        }
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={SUITE_SCOPE}, SignedHeaders={}, Signature={}",
            vector.signed_headers, vector.header_signature
        );
        headers.insert("authorization", authorization.parse().unwrap());
        verify_suite_request(vector, vector.path_and_query, &headers, SUITE_SECRET)
            .unwrap_or_else(|e| panic!("{}: {e}", vector.name));
        assert_eq!(
            verify_suite_request(vector, vector.path_and_query, &headers, "not the secret"),
            Err(AuthError::mismatch()),
            "{}",
            vector.name
        );
    }
}

#[test]
fn presigned_signatures_from_the_aws_test_suite_verify() {
    for vector in VECTORS {
        let headers = suite_headers(vector);
        let separator = if vector.path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let uri = format!(
            "{}{separator}X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}\
             &X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders={}&X-Amz-Expires=3600\
             &X-Amz-Signature={}",
            vector.path_and_query,
            SUITE_SCOPE.replace('/', "%2F"),
            vector.query_signed_headers.replace(';', "%3B"),
            vector.query_signature
        );
        verify_suite_request(vector, &uri, &headers, SUITE_SECRET)
            .unwrap_or_else(|e| panic!("{}: {e}", vector.name));
    }
}

// --- Requests signed by aws-sigv4, checked end to end with a pinned clock.

#[tokio::test]
async fn a_json_request_signed_by_aws_sigv4_authenticates_as_its_caller() {
    let req = signed_at(json_request(b"{\"maxResults\":5}"), noon_signer());
    assert_eq!(check(&req, at(NOON + 30)).await, Ok(alice()));
}

#[tokio::test]
async fn a_cbor_request_signed_by_aws_sigv4_authenticates_as_its_caller() {
    let req = signed_at(cbor_request(&[0xa1, 0x61, 0x61, 0x01]), noon_signer());
    assert_eq!(check(&req, at(NOON - 30)).await, Ok(alice()));
    let empty = signed_at(cbor_request(b""), noon_signer());
    assert_eq!(check(&empty, at(NOON)).await, Ok(alice()));
}

#[tokio::test]
async fn a_presigned_request_authenticates_until_it_expires() {
    let signer = Signer {
        presign: Some(Duration::from_secs(900)),
        ..noon_signer()
    };
    let req = signed_at(json_request(b"{}"), signer);
    assert!(req.headers().get("authorization").is_none());
    assert!(req.uri().query().unwrap().contains("X-Amz-Signature="));
    assert_eq!(check(&req, at(NOON + 899)).await, Ok(alice()));
    assert_eq!(
        check(&req, at(NOON + 901)).await,
        Err(AuthError::InvalidSignature(
            "Signature expired: 20261125T121500Z is now earlier than 20261125T121501Z \
             (20261125T120000Z + 900 s)"
                .to_owned()
        ))
    );
}

#[tokio::test]
async fn a_request_without_any_signature_is_missing_its_authentication_token() {
    let req = json_request(b"{}");
    let err = check(&req, at(NOON)).await.unwrap_err();
    assert_eq!(err, AuthError::MissingAuthenticationToken);
    assert_eq!(err.code(), "MissingAuthenticationTokenException");
    assert_eq!(err.to_string(), "Missing Authentication Token");
}

#[tokio::test]
async fn an_unknown_access_key_is_an_unrecognized_client() {
    let signer = Signer {
        access_key_id: "AKIDNOBODY".to_owned(),
        ..noon_signer()
    };
    let err = check(&signed_at(json_request(b"{}"), signer), at(NOON))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UnrecognizedClientException");
    assert_eq!(
        err.to_string(),
        "The security token included in the request is invalid."
    );
}

#[tokio::test]
async fn a_wrong_secret_is_a_signature_mismatch() {
    let signer = Signer {
        secret: "not-the-secret".to_owned(),
        ..noon_signer()
    };
    let err = check(&signed_at(json_request(b"{}"), signer), at(NOON))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(err.to_string(), SIGNATURE_MISMATCH);
}

#[tokio::test]
async fn a_body_changed_after_signing_is_a_signature_mismatch() {
    let mut req = signed_at(json_request(b"{\"maxResults\":5}"), noon_signer());
    *req.body_mut() = b"{\"maxResults\":6}".to_vec();
    assert_eq!(check(&req, at(NOON)).await, Err(AuthError::mismatch()));
}

#[tokio::test]
async fn a_header_changed_after_signing_is_a_signature_mismatch() {
    let mut req = signed_at(json_request(b"{}"), noon_signer());
    req.headers_mut().insert(
        "x-amz-target",
        "CodePipeline_20150709.DeletePipeline".parse().unwrap(),
    );
    assert_eq!(check(&req, at(NOON)).await, Err(AuthError::mismatch()));
}

/// A JSON request declaring the SHA-256 of `body` in `X-Amz-Content-Sha256`.
fn json_request_declaring_its_hash(body: &[u8]) -> http::Request<Vec<u8>> {
    let mut req = json_request(body);
    let hash = hex::encode(Sha256::digest(body));
    req.headers_mut()
        .insert("x-amz-content-sha256", hash.parse().unwrap());
    req
}

#[tokio::test]
async fn a_body_that_does_not_hash_to_the_declared_payload_hash_is_rejected() {
    let mut req = signed_at(
        json_request_declaring_its_hash(b"{\"maxResults\":5}"),
        noon_signer(),
    );
    assert_eq!(check(&req, at(NOON)).await, Ok(alice()));
    *req.body_mut() = b"{\"maxResults\":6}".to_vec();
    let err = check(&req, at(NOON)).await.unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert!(err.to_string().contains("x-amz-content-sha256"), "{err}");
}

#[tokio::test]
async fn a_declared_payload_hash_lets_the_signature_be_verified_before_the_body() {
    let req = signed_at(json_request_declaring_its_hash(b"{}"), noon_signer());
    let signed = SignedRequest {
        method: req.method(),
        uri: req.uri(),
        headers: req.headers(),
        body: req.body(),
    };
    let expect = expectations(&req);
    let pending = authenticate_head(&signed.head(), &credentials(), &expect, at(NOON))
        .await
        .expect("the head verifies");
    assert_eq!(pending.finish(&signed), Ok(alice()));

    // With another secret the signature fails at the head, before any body is looked at.
    let wrong = StaticCredentials::new().with_key(ACCESS_KEY_ID, "not-the-secret", alice());
    let err = authenticate_head(&signed.head(), &wrong, &expect, at(NOON))
        .await
        .unwrap_err();
    assert_eq!(err, AuthError::mismatch());
}

#[tokio::test]
async fn a_payload_hash_header_that_no_body_can_match_is_rejected_at_the_head() {
    let mut req = json_request(b"{}");
    req.headers_mut()
        .insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
    let req = signed_at(req, noon_signer());
    let signed = SignedRequest {
        method: req.method(),
        uri: req.uri(),
        headers: req.headers(),
        body: req.body(),
    };
    let err = authenticate_head(
        &signed.head(),
        &credentials(),
        &expectations(&req),
        at(NOON),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert!(err.to_string().contains("x-amz-content-sha256"), "{err}");
}

/// A GetPipeline request signed without `X-Amz-Target` (so `SignedHeaders` is only what
/// `aws-sigv4` signs of `host`, `x-amz-date` and the content type), then sent naming
/// DeletePipeline.
fn target_swapped_after_signing(signer: Signer) -> http::Request<Vec<u8>> {
    let mut req = request("/", &[], b"{\"name\":\"Victim\"}");
    signer.sign(&mut req);
    req.headers_mut().insert(
        "x-amz-target",
        "CodePipeline_20150709.DeletePipeline".parse().unwrap(),
    );
    req.headers_mut().insert(
        "content-type",
        "application/x-amz-json-1.1".parse().unwrap(),
    );
    req
}

#[tokio::test]
async fn a_json_signature_that_does_not_cover_the_target_header_is_refused() {
    let req = target_swapped_after_signing(noon_signer());
    let authorization = req.headers()["authorization"].to_str().unwrap();
    assert!(
        authorization.contains("SignedHeaders=host;x-amz-date,"),
        "{authorization}"
    );
    let err = check(&req, at(NOON)).await.unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "The signature must cover the 'x-amz-target' header, which names the operation: \
         'x-amz-target' is missing from SignedHeaders of the Authorization header."
    );
}

#[tokio::test]
async fn a_presigned_json_request_must_list_the_target_header_among_its_signed_headers() {
    let req = target_swapped_after_signing(Signer {
        presign: Some(Duration::from_secs(900)),
        ..noon_signer()
    });
    assert!(req
        .uri()
        .query()
        .unwrap()
        .contains("X-Amz-SignedHeaders=host&"));
    let err = check(&req, at(NOON)).await.unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert!(err.to_string().contains("X-Amz-SignedHeaders"), "{err}");
}

#[tokio::test]
async fn a_request_signed_more_than_five_minutes_ago_has_expired() {
    let req = signed_at(json_request(b"{}"), noon_signer());
    assert_eq!(check(&req, at(NOON + 300)).await, Ok(alice()));
    assert_eq!(
        check(&req, at(NOON + 301)).await,
        Err(AuthError::InvalidSignature(
            "Signature expired: 20261125T120000Z is now earlier than 20261125T120001Z \
             (20261125T120501Z - 5 min.)"
                .to_owned()
        ))
    );
}

#[tokio::test]
async fn a_request_signed_more_than_five_minutes_ahead_is_not_yet_current() {
    let req = signed_at(json_request(b"{}"), noon_signer());
    assert_eq!(
        check(&req, at(NOON - 301)).await,
        Err(AuthError::InvalidSignature(
            "Signature not yet current: 20261125T120000Z is still later than 20261125T115959Z \
             (20261125T115459Z + 5 min.)"
                .to_owned()
        ))
    );
}

#[tokio::test]
async fn a_credential_scoped_to_another_service_is_rejected() {
    let signer = Signer {
        service: "s3".to_owned(),
        ..noon_signer()
    };
    let err = check(&signed_at(json_request(b"{}"), signer), at(NOON))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        AuthError::InvalidSignature(
            "Credential should be scoped to correct service: 'codepipeline'.".to_owned()
        )
    );
}

#[tokio::test]
async fn a_credential_scoped_to_another_region_is_rejected() {
    let signer = Signer {
        region: "eu-west-1".to_owned(),
        ..noon_signer()
    };
    let err = check(&signed_at(json_request(b"{}"), signer), at(NOON))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        AuthError::InvalidSignature("Credential should be scoped to a valid region.".to_owned())
    );
}

fn with_authorization(value: &str, date: Option<&str>) -> http::Request<Vec<u8>> {
    let mut req = json_request(b"{}");
    req.headers_mut()
        .insert("authorization", value.parse().unwrap());
    if let Some(date) = date {
        req.headers_mut()
            .insert("x-amz-date", date.parse().unwrap());
    }
    req
}

#[tokio::test]
async fn malformed_authorization_headers_are_incomplete_signatures() {
    let cases = [
        ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", Some("20261125T120000Z")),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDLOCKGATETEST/20261125/us-east-1/codepipeline/aws4_request, SignedHeaders=host;x-amz-date",
            Some("20261125T120000Z"),
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDLOCKGATETEST/20261125/us-east-1/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd",
            Some("20261125T120000Z"),
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDLOCKGATETEST/20261125/us-east-1/codepipeline/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd",
            None,
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDLOCKGATETEST/20261125/us-east-1/codepipeline/aws4_request, SignedHeaders=x-amz-date, Signature=abcd",
            Some("20261125T120000Z"),
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDLOCKGATETEST/20261125/us-east-1/codepipeline/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd",
            Some("2026-11-25T12:00:00Z"),
        ),
        ("AWS4-HMAC-SHA256 garbage", Some("20261125T120000Z")),
    ];
    for (value, date) in cases {
        let err = check(&with_authorization(value, date), at(NOON))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "IncompleteSignatureException", "{value}: {err}");
    }
}

#[tokio::test]
async fn a_missing_signature_parameter_is_named_in_the_message() {
    let req = with_authorization(
        "AWS4-HMAC-SHA256 Credential=AKIDLOCKGATETEST/20261125/us-east-1/codepipeline/aws4_request, SignedHeaders=host;x-amz-date",
        Some("20261125T120000Z"),
    );
    assert_eq!(
        check(&req, at(NOON)).await,
        Err(AuthError::IncompleteSignature(
            "Authorization header requires 'Signature' parameter.".to_owned()
        ))
    );
}

#[tokio::test]
async fn a_credential_date_that_differs_from_the_request_date_is_rejected() {
    let req = with_authorization(
        "AWS4-HMAC-SHA256 Credential=AKIDLOCKGATETEST/20261124/us-east-1/codepipeline/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=abcd",
        Some("20261125T120000Z"),
    );
    let err = check(&req, at(NOON)).await.unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert!(
        err.to_string()
            .starts_with("Date in Credential scope does not match"),
        "{err}"
    );
}

#[tokio::test]
async fn both_a_header_and_a_query_signature_is_rejected() {
    let signer = Signer {
        presign: Some(Duration::from_secs(60)),
        ..noon_signer()
    };
    let mut req = signed_at(json_request(b"{}"), signer);
    req.headers_mut().insert(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=x".parse().unwrap(),
    );
    let err = check(&req, at(NOON)).await.unwrap_err();
    assert_eq!(err.code(), "IncompleteSignatureException");
}

#[tokio::test]
async fn a_presigned_request_missing_parameters_is_incomplete() {
    let req = request("/?X-Amz-Algorithm=AWS4-HMAC-SHA256", &[], b"");
    let err = check(&req, at(NOON)).await.unwrap_err();
    assert_eq!(err.code(), "IncompleteSignatureException");
}

fn canonical_uri(path: &str) -> String {
    let mut out = String::new();
    push_canonical_uri(&mut out, path);
    out
}

#[test]
fn canonical_uri_normalizes_and_encodes_twice() {
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(canonical_uri("//a//b"), "/a/b");
    assert_eq!(canonical_uri("/a/b/"), "/a/b/");
    assert_eq!(canonical_uri("/a/."), "/a/");
    assert_eq!(canonical_uri("/a/.."), "/");
    assert_eq!(canonical_uri("/a/.../b"), "/a/.../b");
    assert_eq!(canonical_uri("/a b"), "/a%20b");
    assert_eq!(canonical_uri("/~x-y_z.1"), "/~x-y_z.1");
    assert_eq!(canonical_uri("/"), "/");
    assert_eq!(canonical_uri("/a/./b/../c/"), "/a/c/");
    assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
    assert_eq!(
        canonical_uri("/service/CodePipeline_20150709/operation/ListPipelines"),
        "/service/CodePipeline_20150709/operation/ListPipelines"
    );
}

#[test]
fn canonical_query_sorts_and_reencodes() {
    assert_eq!(canonical_query("", None), "");
    assert_eq!(canonical_query("b=2&a=1&a=0", None), "a=0&a=1&b=2");
    assert_eq!(canonical_query("k=a%2fb&flag", None), "flag=&k=a%2Fb");
    assert_eq!(
        canonical_query("X-Amz-Signature=abc&x=1", Some("X-Amz-Signature")),
        "x=1"
    );
}

/// The kept signing keys answer exactly what deriving them afresh does, per secret and scope,
/// including after more scopes than a thread keeps have pushed the first one out.
#[test]
fn kept_signing_keys_match_freshly_derived_ones() {
    fn derived(secret: &str, scope: &str) -> Vec<u8> {
        let mut key = format!("AWS4{secret}").into_bytes();
        for part in scope.split('/') {
            key = hmac(&key, part.as_bytes()).to_vec();
        }
        key
    }
    let scopes: Vec<String> = (1..=KEPT_SIGNING_KEYS + 2)
        .map(|day| format!("202611{day:02}/us-east-1/codepipeline/aws4_request"))
        .collect();
    for _ in 0..2 {
        for scope in &scopes {
            for secret in ["first/secret", "second/secret"] {
                let kept = signing_mac(secret, scope)
                    .chain_update(b"string to sign")
                    .finalize()
                    .into_bytes();
                assert_eq!(
                    kept.as_slice(),
                    hmac(&derived(secret, scope), b"string to sign"),
                    "{scope}"
                );
            }
        }
    }
    assert_ne!(
        signing_key("first/secret", &scopes[0]),
        signing_key("second/secret", &scopes[0])
    );
    assert_eq!(
        signing_key("first/secret", &scopes[0]).to_vec(),
        derived("first/secret", &scopes[0])
    );
}

/// Digests are written as lowercase hex, as SigV4 requires (the `hex` crate is the reference).
#[test]
fn digests_print_as_lowercase_hex() {
    let digest: [u8; 32] = Sha256::digest(b"lockgate").into();
    assert_eq!(Hex::of(&digest).as_str(), hex::encode(digest));
    assert_eq!(Hex::of(&[0xab; 32]).as_str(), "ab".repeat(32));
}
