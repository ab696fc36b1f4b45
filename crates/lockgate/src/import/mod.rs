//! `lockgate pipelines import FILE`: loads what people already have (a CloudFormation template
//! such as `cdk synth` writes, or an `aws codepipeline get-pipeline` answer) into a running
//! Lockgate through its API, creating what is new and updating what exists.

pub mod template;
mod yaml;

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::client::Client;
use template::{plan, Target};

/// What an import needs to know besides the file.
pub struct ImportOptions {
    /// The Lockgate API's URL.
    pub endpoint: String,
    /// The region to sign for and to write into ARNs.
    pub region: String,
    /// The account id to write into ARNs.
    pub account_id: String,
}

/// Imports `file`; prints what was assumed and one line per custom action type and pipeline.
pub async fn import(file: &Path, options: &ImportOptions) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    // JSON (what `cdk synth` writes into cdk.out/, and what get-pipeline prints) or YAML.
    let doc: Value = match serde_json::from_str(&text) {
        Ok(doc) => doc,
        Err(json_error) => yaml::to_json(&text).map_err(|yaml_error| {
            anyhow::anyhow!(
                "{} is neither JSON ({json_error}) nor YAML ({yaml_error})",
                file.display()
            )
        })?,
    };
    let stack_name = file
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').next())
        .unwrap_or("stack")
        .to_string();
    let target = Target {
        account_id: options.account_id.clone(),
        region: options.region.clone(),
        stack_name,
    };
    let plan = plan(&doc, &target).with_context(|| format!("cannot import {}", file.display()))?;
    for assumption in &plan.assumptions {
        println!("assumed   {assumption}");
    }
    let client = Client::new(&options.endpoint, &options.region).await?;
    for input in &plan.custom_action_types {
        let name = format!(
            "{}/Custom/{}/{}",
            input["category"].as_str().unwrap_or("?"),
            input["provider"].as_str().unwrap_or("?"),
            input["version"].as_str().unwrap_or("?")
        );
        match client.call("CreateCustomActionType", input).await? {
            Ok(_) => println!("created   action type {name}"),
            Err(e) if e.message.contains("already exists") => {
                println!("unchanged action type {name} (it exists)")
            }
            Err(e) => bail!("action type {name}: {e}"),
        }
    }
    for pipeline in &plan.pipelines {
        let name = pipeline.declaration["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let exists = match client.call("GetPipeline", &json!({"name": name})).await? {
            Ok(_) => true,
            Err(e) if e.code == "PipelineNotFoundException" => false,
            Err(e) => bail!("pipeline {name} ({}): {e}", pipeline.source),
        };
        let answer = if exists {
            client
                .call("UpdatePipeline", &json!({"pipeline": pipeline.declaration}))
                .await?
        } else {
            let mut input = json!({"pipeline": pipeline.declaration});
            if !pipeline.tags.is_empty() {
                input["tags"] = Value::Array(pipeline.tags.clone());
            }
            client.call("CreatePipeline", &input).await?
        };
        let answer =
            answer.map_err(|e| anyhow::anyhow!("pipeline {name} ({}): {e}", pipeline.source))?;
        for (stage, reason) in &pipeline.disabled_transitions {
            let input = json!({"pipelineName": name, "stageName": stage,
                               "transitionType": "Inbound", "reason": reason});
            client
                .call("DisableStageTransition", &input)
                .await?
                .map_err(|e| anyhow::anyhow!("pipeline {name}, stage {stage}: {e}"))?;
        }
        let version = answer["pipeline"]["version"].as_i64().unwrap_or(0);
        let verb = if exists { "updated" } else { "created" };
        println!(
            "{verb:<9} pipeline {name} (version {version}) from {}",
            pipeline.source
        );
    }
    Ok(())
}
