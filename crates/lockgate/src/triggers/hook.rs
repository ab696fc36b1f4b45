//! `POST /hooks/git/<repository>`: a repository's push hook. A bare repository's
//! `post-receive` hook (`curl -X POST -H "Authorization: Bearer $SECRET" ...`) or a forge's
//! push webhook calls it; the secret is the repository's `hook_secret`, presented as a bearer
//! token, an `X-Lockgate-Hook-Secret` or `X-Gitlab-Token` header, or GitHub's
//! `X-Hub-Signature-256` (an HMAC-SHA256 of the body). The repository is fetched at once and
//! the pipelines its moved refs match are started; the answer lists them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::SourceWatcher;

/// The hook's routes.
pub fn router(watcher: Arc<SourceWatcher>) -> axum::Router {
    axum::Router::new()
        .route("/hooks/git/{repository}", axum::routing::post(push))
        .with_state(watcher)
}

fn answer(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

async fn push(
    State(watcher): State<Arc<SourceWatcher>>,
    Path(repository): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(secret) = watcher
        .repository(&repository)
        .and_then(|r| r.hook_secret.clone())
    else {
        return answer(
            StatusCode::NOT_FOUND,
            format!("No push hook is configured for repository {repository}: give it a hook_secret in [[repositories]]"),
        );
    };
    if !authorised(&headers, &body, secret.expose_secret()) {
        tracing::warn!(repository = %repository, "a push hook call was refused: wrong or missing secret");
        return answer(
            StatusCode::UNAUTHORIZED,
            format!("The push hook of repository {repository} needs its secret"),
        );
    }
    match watcher.hook(&repository).await {
        Ok((moves, started)) => (
            StatusCode::OK,
            Json(json!({
                "repository": repository,
                "moved": moves.iter().map(|m| json!({
                    "ref": if m.tag { format!("refs/tags/{}", m.name) } else { format!("refs/heads/{}", m.name) },
                    "commit": m.commit,
                })).collect::<Vec<_>>(),
                "started": started,
            })),
        )
            .into_response(),
        Err(e) => answer(StatusCode::BAD_GATEWAY, e),
    }
}

/// Whether the request presents `secret` in one of the ways the module describes.
fn authorised(headers: &HeaderMap, body: &[u8], secret: &str) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let same = |given: &str| bool::from(given.as_bytes().ct_eq(secret.as_bytes()));
    if let Some(token) = header("authorization").and_then(|v| v.strip_prefix("Bearer ")) {
        return same(token.trim());
    }
    if let Some(token) = header("x-lockgate-hook-secret").or_else(|| header("x-gitlab-token")) {
        return same(token.trim());
    }
    if let Some(signature) = header("x-hub-signature-256").and_then(|v| v.strip_prefix("sha256=")) {
        let Ok(given) = hex::decode(signature.trim()) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(body);
        return mac.verify_slice(&given).is_ok();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_of_presenting_the_secret_is_checked() {
        let mut h = HeaderMap::new();
        assert!(!authorised(&h, b"", "s3cret"));
        h.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(authorised(&h, b"", "s3cret"));
        h.insert("authorization", "Bearer wrong".parse().unwrap());
        assert!(!authorised(&h, b"", "s3cret"));
        let mut h = HeaderMap::new();
        h.insert("x-gitlab-token", "s3cret".parse().unwrap());
        assert!(authorised(&h, b"", "s3cret"));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"{\"ref\":\"refs/heads/main\"}");
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let mut h = HeaderMap::new();
        h.insert("x-hub-signature-256", sig.parse().unwrap());
        assert!(authorised(&h, b"{\"ref\":\"refs/heads/main\"}", "s3cret"));
        assert!(!authorised(&h, b"{\"ref\":\"refs/heads/other\"}", "s3cret"));
    }
}
