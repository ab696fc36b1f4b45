//! Pipeline declarations as `CreatePipeline` and `UpdatePipeline` carry them: the model's
//! constraint checks, the typed decode, then `validate_pipeline`.
//!
//! An input is the declaration's JSON. Invariants: a value the constraint checks accept decodes
//! into a `PipelineDeclaration`, and `validate_pipeline` answers (valid or an error) without
//! panicking.

use lockgate_model::{validate_pipeline, ActionTypeRegistry};
use lockgate_shapes::{ActionType, PipelineDeclaration};
use serde_json::{json, Value};

use crate::Reached;

/// The action types the seed pipelines use: the built-in manual approval plus a custom source
/// and a custom build, as `lockgate-model`'s validation fixtures declare them.
fn registry() -> ActionTypeRegistry {
    let custom = json!([
        {"id": {"category": "Source", "owner": "Custom", "provider": "LocalSource", "version": "1"},
         "actionConfigurationProperties": [
             {"name": "Path", "required": false, "key": true, "secret": false, "type": "String"}],
         "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 0},
         "outputArtifactDetails": {"minimumCount": 1, "maximumCount": 1}},
        {"id": {"category": "Build", "owner": "Custom", "provider": "Shell", "version": "1"},
         "actionConfigurationProperties": [
             {"name": "Command", "required": true, "key": true, "secret": false, "type": "String"}],
         "inputArtifactDetails": {"minimumCount": 1, "maximumCount": 5},
         "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 5}},
    ]);
    let mut registry = ActionTypeRegistry::new();
    let types: Vec<ActionType> =
        serde_json::from_value(custom).expect("the fuzz registry's action types decode");
    for action_type in types {
        registry.insert(action_type);
    }
    registry
}

/// Fuzzes pipeline validation.
pub fn pipeline_declaration(data: &[u8]) -> Reached {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return Reached::Layout;
    };
    if lockgate_shapes::validate::check_shape("PipelineDeclaration", &value).is_err() {
        return Reached::Refused;
    }
    let decl: PipelineDeclaration = match serde_json::from_value(value.clone()) {
        Ok(decl) => decl,
        Err(e) => {
            panic!("check_shape accepted a declaration its typed decode refuses ({e}): {value}")
        }
    };
    match validate_pipeline(&decl, &registry()) {
        Ok(_) => Reached::Accepted,
        Err(_) => Reached::Refused,
    }
}
