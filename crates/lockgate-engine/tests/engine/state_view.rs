//! GetPipelineState answered from the bytes the service keeps per pipeline and protocol
//! (`EncodedAnswers`, which the API asks first): they mean exactly what the typed answer means,
//! in both protocols, and the commit that installs a new state replaces them.

use ciborium::Value as Cbor;
use serde_json::{json, Value};

use crate::*;

/// `value` with every map's entries in key order: the kept encoding writes members in
/// declaration order, a `serde_json::Value` in key order, and neither order has a meaning.
fn canonical(value: Cbor) -> Cbor {
    match value {
        Cbor::Map(entries) => {
            let mut entries: Vec<(Cbor, Cbor)> = entries
                .into_iter()
                .map(|(k, v)| (k, canonical(v)))
                .collect();
            entries.sort_by(|a, b| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)));
            Cbor::Map(entries)
        }
        Cbor::Array(items) => Cbor::Array(items.into_iter().map(canonical).collect()),
        Cbor::Tag(tag, inner) => Cbor::Tag(tag, Box::new(canonical(*inner))),
        other => other,
    }
}

fn cbor(bytes: &[u8]) -> Cbor {
    canonical(ciborium::de::from_reader(bytes).expect("a CBOR body"))
}

/// The kept answer in `encoding`, which GetPipelineState must have.
async fn kept(env: &TestEnv, pipeline: &str, encoding: Encoding) -> bytes::Bytes {
    env.svc
        .encoded_answer(
            &env.caller,
            Operation::GetPipelineState,
            &json!({ "name": pipeline }),
            encoding,
        )
        .await
        .expect("GetPipelineState has a kept answer")
}

/// Compares the kept answers with the normal path in both protocols: the typed answer encoded
/// as the API did before any answer was kept (JSON through a `serde_json::Value`; CBOR through
/// the model-guided conversion, a tag 1 wherever the model says timestamp), and `dispatch`.
async fn assert_kept_answers_mean_the_typed_answer(env: &TestEnv, pipeline: &str) -> Value {
    let typed = serde_json::to_value(env.state(pipeline).await).unwrap();
    let input = json!({ "name": pipeline });

    let json_kept = kept(env, pipeline, Encoding::Json).await;
    let json_kept: Value = serde_json::from_slice(&json_kept).expect("a JSON body");
    assert_eq!(json_kept, typed);

    let cbor_kept = cbor(&kept(env, pipeline, Encoding::Cbor).await);
    let guided = canonical(lockgate_shapes::cbor::json_to_cbor(
        "GetPipelineStateOutput",
        &typed,
    ));
    assert_eq!(cbor_kept, guided);
    let timestamps = format!("{cbor_kept:?}").matches("Tag(1, ").count();
    assert!(timestamps >= 3, "{cbor_kept:?}");

    for encoding in [Encoding::Json, Encoding::Cbor] {
        let normal = dispatch(
            env.svc.as_ref(),
            &env.caller,
            Operation::GetPipelineState,
            input.clone(),
            encoding,
        )
        .await
        .expect("GetPipelineState answers");
        let kept = kept(env, pipeline, encoding).await;
        match encoding {
            Encoding::Json => assert_eq!(
                serde_json::from_slice::<Value>(&normal).unwrap(),
                serde_json::from_slice::<Value>(&kept).unwrap()
            ),
            Encoding::Cbor => assert_eq!(cbor(&normal), cbor(&kept)),
        }
    }
    typed
}

#[tokio::test]
async fn the_kept_state_answer_means_what_the_typed_answer_means_in_both_protocols() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    let state = assert_kept_answers_mean_the_typed_answer(&env, "p").await;
    assert_eq!(state["pipelineName"], "p");
    assert_eq!(state["created"], json!(START_MILLIS as f64 / 1000.0));
}

#[tokio::test]
async fn the_commit_that_installs_a_new_state_replaces_the_kept_answers() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    let waiting_json = kept(&env, "p", Encoding::Json).await;
    let waiting_cbor = kept(&env, "p", Encoding::Cbor).await;
    // Until the next commit the same bytes are served.
    assert_eq!(kept(&env, "p", Encoding::Json).await, waiting_json);

    env.clock.advance(MINUTE);
    env.approve_pending("p").await;

    assert_ne!(kept(&env, "p", Encoding::Json).await, waiting_json);
    assert_ne!(kept(&env, "p", Encoding::Cbor).await, waiting_cbor);
    let state = assert_kept_answers_mean_the_typed_answer(&env, "p").await;
    let approval = &state["stageStates"][1]["actionStates"][0]["latestExecution"];
    assert_eq!(approval["status"], "Succeeded", "{state}");
}

#[tokio::test]
async fn what_the_service_keeps_no_answer_for_is_left_to_the_typed_path() {
    let env = TestEnv::new().await;
    env.standard_waiting_for_approval("p").await;
    let ask = |op: Operation, input: Value| {
        let svc = env.svc.clone();
        let caller = env.caller.clone();
        async move {
            svc.encoded_answer(&caller, op, &input, Encoding::Json)
                .await
        }
    };
    // An unknown pipeline: the typed path answers PipelineNotFoundException.
    assert_eq!(
        ask(Operation::GetPipelineState, json!({"name": "nope"})).await,
        None
    );
    // An input the typed decode refuses: the typed path explains it.
    assert_eq!(
        ask(Operation::GetPipelineState, json!({"name": 7})).await,
        None
    );
    assert_eq!(ask(Operation::ListPipelines, json!({})).await, None);
    assert_eq!(
        ask(Operation::GetPipeline, json!({"name": "p"})).await,
        None
    );
}
