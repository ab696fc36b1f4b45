//! SNS Publish against a local HTTP server: the request is a correctly signed Query-protocol
//! Publish, and SNS's `ErrorResponse` reaches the delivery's last error with its code and
//! message.

use hmac::{Hmac, Mac};
use lockgate_notify::send_test;
use sha2::{Digest, Sha256};

use crate::harness::{config, notice, subscription, topic_arn, Outbox, Received, Receiver};

const KEY_ID: &str = "AKIDLOCKGATETEST";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

const PUBLISHED: &str = r#"<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <PublishResult><MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId></PublishResult>
  <ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId></ResponseMetadata>
</PublishResponse>"#;

const NOT_FOUND: &str = r#"<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error>
  <RequestId>9dd01905-5012-5f99-8663-4b3ecd0dfaef</RequestId>
</ErrorResponse>"#;

/// A topic whose one subscription publishes to the SNS API at `endpoint`, signing with the
/// test keys from `[sns]`.
fn sns_config(topic: &str, endpoint: &str) -> lockgate_notify::NotifyConfig {
    let mut cfg = config(
        vec![(
            topic.to_string(),
            vec![subscription(
                serde_json::json!({ "protocol": "sns", "endpoint": endpoint }),
            )],
        )],
        5.0,
    );
    cfg.sns.region = Some("eu-west-1".into());
    cfg.sns.access_key_id = Some(KEY_ID.into());
    cfg.sns.secret_access_key = Some(SECRET.to_string().into());
    cfg
}

#[tokio::test]
async fn publish_is_a_signed_query_protocol_request_that_sns_accepts() {
    let sns = Receiver::start(200, PUBLISHED).await;
    let topic = topic_arn("release-approvals");

    let results = send_test(sns_config(&topic, &sns.url), &topic)
        .await
        .expect("valid configuration");

    assert_eq!(results.len(), 1);
    assert_eq!(results[0].result, Ok(()));
    let [request] = <[Received; 1]>::try_from(sns.requests()).expect("one request");
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri.path(), "/");
    assert_eq!(
        request.headers["content-type"],
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    let form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {form:?}"))
    };
    assert_eq!(field("Action"), "Publish");
    assert_eq!(field("Version"), "2010-03-31");
    assert_eq!(field("TopicArn"), topic);
    assert_eq!(
        field("Subject"),
        format!("TEST: Lockgate notifications for {topic}")
    );
    let message: serde_json::Value = serde_json::from_str(&field("Message")).expect("JSON");
    assert_eq!(message["topicArn"], topic);

    let scope = verify_signature(&request, SECRET).expect("a valid SigV4 signature");
    assert!(scope.ends_with("/eu-west-1/sns/aws4_request"), "{scope}");
    // The check is real: the same request with another body or key does not verify.
    let mut tampered = request.clone();
    tampered.body = [request.body.as_ref(), b"&Subject=x"].concat().into();
    assert!(verify_signature(&tampered, SECRET).is_err());
    assert!(verify_signature(&request, "another secret").is_err());
}

#[tokio::test]
async fn an_sns_error_response_is_the_deliverys_last_error_with_its_code_and_message() {
    let sns = Receiver::start(404, NOT_FOUND).await;
    let topic = topic_arn("gone");
    let outbox = Outbox::new(sns_config(&topic, &sns.url));
    let key = outbox
        .put(&notice(&topic, "Unpublished"), Outbox::NOW)
        .await;

    let report = outbox.relay.run_once().await.expect("drain");

    assert_eq!(report.retrying, 1, "{report:?}");
    assert_eq!(sns.requests().len(), 1);
    let row = outbox.row(&key).await.expect("kept for a retry");
    let error = row.body.value()["delivery"]["subscriptions"][format!("sns:{}", sns.url)]
        ["lastError"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        error,
        format!("SNS Publish to {topic}: NotFound: Topic does not exist (HTTP 404 Not Found)")
    );
}

/// Checks the request's SigV4 `Authorization` header by recomputing the signature from the
/// request as received (AWS's documented algorithm, written out here rather than asking the
/// signer that made it); returns the credential scope.
fn verify_signature(request: &Received, secret: &str) -> Result<String, String> {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("no {name} header"))
    };
    let authorization = header("authorization")?;
    let fields = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let part = |name: &str| {
        fields
            .split(", ")
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .ok_or_else(|| format!("no {name} in {authorization}"))
    };
    let credential = part("Credential")?;
    let signed_headers = part("SignedHeaders")?;
    let signature = part("Signature")?;
    let (key_id, scope) = credential.split_once('/').ok_or("bad credential")?;
    if key_id != KEY_ID {
        return Err(format!("signed with {key_id}"));
    }
    for required in ["content-type", "host", "x-amz-date"] {
        if !signed_headers.split(';').any(|h| h == required) {
            return Err(format!("{required} is not signed: {signed_headers}"));
        }
    }
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        canonical_headers.push_str(&format!("{name}:{}\n", header(name)?.trim()));
    }
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        request.uri.path(),
        request.uri.query().unwrap_or(""),
        hex::encode(Sha256::digest(&request.body)),
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        header("x-amz-date")?,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for step in scope.split('/') {
        key = hmac(&key, step.as_bytes());
    }
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    if expected == signature {
        Ok(scope.to_string())
    } else {
        Err(format!("signature {signature}, expected {expected}"))
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}
