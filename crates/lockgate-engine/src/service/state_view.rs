//! The cached GetPipelineState answer of one pipeline, and the API's way to it.
//!
//! A [`StateView`] is installed with each committed state and replaced (with everything it
//! holds) by the next commit's. It holds the typed output and the answer encoded for each wire
//! protocol, each made by the first read that asks for it, so a commit costs nothing here (a
//! pipeline written more often than it is read never builds a view) and every other read until
//! the next commit copies an `Arc` and a `Bytes` handle: no deep copy of the view, no encoding. The API reaches it through [`EncodedAnswers`]; the typed `get_pipeline_state` and the
//! console read the same view, so every path answers from the same committed state.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use lockgate_model::Caller;
use lockgate_shapes::{
    EncodedAnswers, Encoding, GetPipelineStateInput, GetPipelineStateOutput, Operation,
    ServiceError,
};
use serde::Deserialize;

use super::PipelineService;
use crate::state::PipelineState;
use crate::views;

/// One committed state's GetPipelineState answer: the output and its encodings.
pub(super) struct StateView {
    /// The committed state the view shows.
    state: Arc<PipelineState>,
    /// The typed output, made on the first read that needs it.
    output: OnceLock<Arc<GetPipelineStateOutput>>,
    /// The awsJson1.1 body, made on the first read that needs it.
    json: OnceLock<Bytes>,
    /// The RPC v2 CBOR body, made on the first read that needs it.
    cbor: OnceLock<Bytes>,
}

impl StateView {
    /// The view of `state`; nothing is built or encoded yet.
    pub(super) fn new(state: Arc<PipelineState>) -> Self {
        StateView {
            state,
            output: OnceLock::new(),
            json: OnceLock::new(),
            cbor: OnceLock::new(),
        }
    }

    /// The typed output, built now if no read has needed it since the commit.
    pub(super) fn output(&self) -> &Arc<GetPipelineStateOutput> {
        // Readers arriving while it is built wait for that one build.
        self.output
            .get_or_init(|| Arc::new(views::pipeline_state(&self.state)))
    }

    /// The output encoded in `encoding`, encoded now if no read has asked for it since the
    /// commit; `None` only if it cannot be encoded (the caller then takes the typed path).
    pub(super) fn encoded(&self, encoding: Encoding) -> Option<Bytes> {
        let cell = match encoding {
            Encoding::Json => &self.json,
            Encoding::Cbor => &self.cbor,
        };
        if let Some(body) = cell.get() {
            return Some(body.clone());
        }
        // Two first readers may both encode; both results are the same bytes and one is kept.
        let body = encoding.encode(self.output().as_ref()).ok()?;
        Some(cell.get_or_init(|| body).clone())
    }
}

impl PipelineService {
    /// The installed GetPipelineState view of a pipeline.
    pub(super) async fn state_view(&self, name: &str) -> Result<Arc<StateView>, ServiceError> {
        self.slot(name)
            .await?
            .current()
            .map(|i| i.view)
            .ok_or_else(|| self.not_found(name))
    }
}

/// GetPipelineState is answered from the installed view's encoded bytes; every other operation,
/// and a GetPipelineState that fails, goes the typed way.
#[async_trait::async_trait]
impl EncodedAnswers for PipelineService {
    async fn encoded_answer(
        &self,
        _caller: &Caller,
        op: Operation,
        input: &serde_json::Value,
        encoding: Encoding,
    ) -> Option<Bytes> {
        match op {
            Operation::GetPipelineState => {
                let input = GetPipelineStateInput::deserialize(input).ok()?;
                self.state_view(&input.name).await.ok()?.encoded(encoding)
            }
            _ => None,
        }
    }
}
