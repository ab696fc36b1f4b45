//! What `lockgate pipelines import` sends, read from the file it is given (as JSON; `yaml.rs`
//! reads YAML templates into the same form): a CloudFormation template (as `cdk synth` writes
//! into `cdk.out/*.template.json`) or an answer of `aws codepipeline get-pipeline`.
//!
//! A template's `AWS::CodePipeline::Pipeline` resources become CreatePipeline / UpdatePipeline
//! declarations: CloudFormation's PascalCase property names become the API's camelCase ones,
//! `ArtifactStores` (a list with a `Region` each) becomes the API's map by region, and an
//! action's `Configuration` keeps its keys with every value made a string (CDK writes
//! `"PollForSourceChanges": false`). `Ref`, `Fn::GetAtt`, `Fn::Sub` and `Fn::Join` are resolved
//! to literal names and ARNs in the server's account and region, each resolution recorded as an
//! assumption so the user sees what was assumed. `AWS::CodePipeline::CustomActionType`
//! resources become CreateCustomActionType inputs, made first. Anything that cannot be converted
//! is an error naming the resource and the property.

use serde_json::{Map, Value};

/// Where the converted pipelines will live: the names ARNs are made with.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server's account id.
    pub account_id: String,
    /// The server's region.
    pub region: String,
    /// What `AWS::StackName` stands for (the template file's name without extensions).
    pub stack_name: String,
}

/// Everything an import sends, in order.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// CreateCustomActionType inputs.
    pub custom_action_types: Vec<Value>,
    /// Pipelines to create or update.
    pub pipelines: Vec<PipelinePlan>,
    /// What was assumed to turn references into literals, one line each.
    pub assumptions: Vec<String>,
}

/// One pipeline of the file.
#[derive(Debug, PartialEq)]
pub struct PipelinePlan {
    /// Where it came from: the template's logical id, or `get-pipeline`.
    pub source: String,
    /// The declaration, in the API's shape.
    pub declaration: Value,
    /// Its tags, in the API's shape (`key`, `value`).
    pub tags: Vec<Value>,
    /// Stages whose inbound transition the template disables, with the reason.
    pub disabled_transitions: Vec<(String, String)>,
}

/// Why the file cannot be imported.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImportError {
    /// Neither a template with a pipeline nor a `get-pipeline` answer.
    #[error("{0}")]
    Unrecognised(String),
    /// A resource's property that could not be converted.
    #[error("resource {resource}, property {property}: {problem}")]
    Property {
        /// The logical id.
        resource: String,
        /// The property's path, e.g. `Stages[1].Actions[0].Configuration.ProjectName`.
        property: String,
        /// What is wrong.
        problem: String,
    },
}

/// Reads `doc` (already parsed JSON) into a plan.
pub fn plan(doc: &Value, target: &Target) -> Result<Plan, ImportError> {
    if let Some(pipeline) = doc.get("pipeline").filter(|p| p.is_object()) {
        let mut declaration = pipeline.clone();
        if let Some(map) = declaration.as_object_mut() {
            // The server numbers versions itself.
            map.remove("version");
        }
        return Ok(Plan {
            pipelines: vec![PipelinePlan {
                source: "get-pipeline".into(),
                declaration,
                tags: Vec::new(),
                disabled_transitions: Vec::new(),
            }],
            ..Plan::default()
        });
    }
    let Some(resources) = doc.get("Resources").and_then(Value::as_object) else {
        return Err(ImportError::Unrecognised(
            "the file is neither a CloudFormation template (no Resources) nor an answer of \
             `aws codepipeline get-pipeline` (no pipeline)"
                .into(),
        ));
    };
    let template = Template {
        resources,
        parameters: doc.get("Parameters").and_then(Value::as_object),
        target,
    };
    let mut plan = Plan::default();
    for (id, resource) in resources {
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        let properties = resource
            .get("Properties")
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        let mut scope = Scope {
            template: &template,
            resource: id,
            assumptions: &mut plan.assumptions,
        };
        match kind {
            "AWS::CodePipeline::CustomActionType" => {
                let resolved = scope.resolve(&properties, "")?;
                plan.custom_action_types.push(camel_case(&resolved, false));
            }
            "AWS::CodePipeline::Pipeline" => {
                let resolved = scope.resolve(&properties, "")?;
                plan.pipelines.push(pipeline_plan(id, resolved)?);
            }
            _ => {}
        }
    }
    if plan.pipelines.is_empty() {
        return Err(ImportError::Unrecognised(
            "the template has no AWS::CodePipeline::Pipeline resource".into(),
        ));
    }
    Ok(plan)
}

/// A pipeline resource's properties (references already resolved) as the API declares it.
fn pipeline_plan(id: &str, mut properties: Value) -> Result<PipelinePlan, ImportError> {
    let error = |property: &str, problem: &str| ImportError::Property {
        resource: id.to_string(),
        property: property.to_string(),
        problem: problem.to_string(),
    };
    let map = properties
        .as_object_mut()
        .ok_or_else(|| error("Properties", "not an object"))?;
    let tags = match map.remove("Tags") {
        Some(Value::Array(tags)) => tags.iter().map(|t| camel_case(t, false)).collect(),
        Some(_) => return Err(error("Tags", "not a list")),
        None => Vec::new(),
    };
    let mut disabled_transitions = Vec::new();
    for (n, item) in map
        .remove("DisableInboundStageTransitions")
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_string);
        match (text("StageName"), text("Reason")) {
            (Some(stage), Some(reason)) => disabled_transitions.push((stage, reason)),
            _ => {
                return Err(error(
                    &format!("DisableInboundStageTransitions[{n}]"),
                    "needs StageName and Reason",
                ))
            }
        }
    }
    // CloudFormation only: how it replaces a pipeline, nothing the API knows.
    map.remove("RestartExecutionOnUpdate");
    if !map.contains_key("Name") {
        // CloudFormation would generate a name; the logical id is the one a person recognises.
        map.insert("Name".into(), Value::String(id.to_string()));
    }
    let mut declaration = camel_case(&properties, false);
    if let Some(decl) = declaration.as_object_mut() {
        if let Some(Value::Array(stores)) = decl.remove("artifactStores") {
            let mut by_region = Map::new();
            for (n, store) in stores.iter().enumerate() {
                let region = store.get("region").and_then(Value::as_str);
                let artifact_store = store.get("artifactStore");
                match (region, artifact_store) {
                    (Some(region), Some(s)) => {
                        by_region.insert(region.to_string(), s.clone());
                    }
                    _ => {
                        return Err(error(
                            &format!("ArtifactStores[{n}]"),
                            "needs Region and ArtifactStore",
                        ))
                    }
                }
            }
            decl.insert("artifactStores".into(), Value::Object(by_region));
        }
    }
    Ok(PipelinePlan {
        source: id.to_string(),
        declaration,
        tags,
        disabled_transitions,
    })
}

/// `value` with every object key's first letter lowercased, except inside a `Configuration`
/// map, whose keys are the action type's own and whose values become strings.
fn camel_case(value: &Value, in_configuration: bool) -> Value {
    match value {
        Value::Object(map) if in_configuration => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), Value::String(as_configuration_value(v))))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (lower_first(k), camel_case(v, k == "Configuration")))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| camel_case(v, false)).collect()),
        other => other.clone(),
    }
}

/// A configuration value as the API carries it: always a string.
fn as_configuration_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        // CloudFormation accepts JSON here (e.g. EnvironmentVariables); the API takes its text.
        other => other.to_string(),
    }
}

fn lower_first(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The template a resource's references are resolved against.
struct Template<'a> {
    resources: &'a Map<String, Value>,
    parameters: Option<&'a Map<String, Value>>,
    target: &'a Target,
}

/// Resolving one resource's properties.
struct Scope<'a, 'b> {
    template: &'a Template<'a>,
    resource: &'a str,
    assumptions: &'b mut Vec<String>,
}

impl Scope<'_, '_> {
    fn error(&self, path: &str, problem: impl Into<String>) -> ImportError {
        ImportError::Property {
            resource: self.resource.to_string(),
            property: if path.is_empty() {
                "Properties".into()
            } else {
                path.to_string()
            },
            problem: problem.into(),
        }
    }

    fn assume(&mut self, path: &str, what: &str, value: &str) {
        self.assumptions
            .push(format!("{}.{path}: {what} → {value}", self.resource));
    }

    /// `value` with every intrinsic function replaced by what it stands for; `None` inside an
    /// object or list removes the property (`Ref: AWS::NoValue`).
    fn resolve(&mut self, value: &Value, path: &str) -> Result<Value, ImportError> {
        Ok(self.resolve_opt(value, path)?.unwrap_or(Value::Null))
    }

    fn resolve_opt(&mut self, value: &Value, path: &str) -> Result<Option<Value>, ImportError> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().expect("one entry");
                if key == "Ref" || key.starts_with("Fn::") {
                    return self.intrinsic(key, arg, path);
                }
                self.resolve_object(map, path).map(Some)
            }
            Value::Object(map) => self.resolve_object(map, path).map(Some),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (n, item) in items.iter().enumerate() {
                    if let Some(v) = self.resolve_opt(item, &format!("{path}[{n}]"))? {
                        out.push(v);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    fn resolve_object(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
    ) -> Result<Value, ImportError> {
        let mut out = Map::new();
        for (key, v) in map {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if let Some(v) = self.resolve_opt(v, &child)? {
                out.insert(key.clone(), v);
            }
        }
        Ok(Value::Object(out))
    }

    fn intrinsic(
        &mut self,
        function: &str,
        arg: &Value,
        path: &str,
    ) -> Result<Option<Value>, ImportError> {
        match function {
            "Ref" => {
                let name = arg
                    .as_str()
                    .ok_or_else(|| self.error(path, "Ref needs a name"))?;
                if name == "AWS::NoValue" {
                    return Ok(None);
                }
                let value = self.reference(name, path)?;
                self.assume(path, &format!("Ref {name}"), &value);
                Ok(Some(Value::String(value)))
            }
            "Fn::GetAtt" => {
                let (name, attribute) = match arg {
                    Value::Array(parts) if parts.len() == 2 => (
                        parts[0].as_str().unwrap_or_default().to_string(),
                        parts[1].as_str().unwrap_or_default().to_string(),
                    ),
                    Value::String(text) => match text.split_once('.') {
                        Some((n, a)) => (n.to_string(), a.to_string()),
                        None => return Err(self.error(path, "Fn::GetAtt needs Resource.Attribute")),
                    },
                    _ => return Err(self.error(path, "Fn::GetAtt needs [Resource, Attribute]")),
                };
                let value = self.attribute(&name, &attribute, path)?;
                self.assume(path, &format!("Fn::GetAtt {name}.{attribute}"), &value);
                Ok(Some(Value::String(value)))
            }
            "Fn::Join" => {
                let parts = arg.as_array().filter(|p| p.len() == 2);
                let (Some(delimiter), Some(items)) = (
                    parts.and_then(|p| p[0].as_str()),
                    parts.and_then(|p| p[1].as_array()),
                ) else {
                    return Err(self.error(path, "Fn::Join needs [delimiter, [values]]"));
                };
                let mut texts = Vec::with_capacity(items.len());
                for item in items {
                    match self.resolve(item, path)? {
                        Value::String(s) => texts.push(s),
                        other => texts.push(as_configuration_value(&other)),
                    }
                }
                Ok(Some(Value::String(texts.join(delimiter))))
            }
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Value::String(text) => (text.clone(), None),
                    Value::Array(parts) if parts.len() == 2 => (
                        parts[0].as_str().unwrap_or_default().to_string(),
                        parts[1].as_object(),
                    ),
                    _ => {
                        return Err(
                            self.error(path, "Fn::Sub needs a string or [string, {variables}]")
                        )
                    }
                };
                let mut out = String::new();
                let mut rest = text.as_str();
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let after = &rest[start + 2..];
                    let Some(end) = after.find('}') else {
                        return Err(self.error(path, "Fn::Sub has an unclosed ${"));
                    };
                    let name = &after[..end];
                    if let Some(literal) = name.strip_prefix('!') {
                        out.push_str("${");
                        out.push_str(literal);
                        out.push('}');
                    } else if let Some(v) = vars.and_then(|vars| vars.get(name)) {
                        match self.resolve(v, path)? {
                            Value::String(s) => out.push_str(&s),
                            other => out.push_str(&as_configuration_value(&other)),
                        }
                    } else if let Some((resource, attribute)) = name.split_once('.') {
                        out.push_str(&self.attribute(resource, attribute, path)?);
                    } else {
                        out.push_str(&self.reference(name, path)?);
                    }
                    rest = &after[end + 1..];
                }
                out.push_str(rest);
                self.assume(path, &format!("Fn::Sub {text}"), &out);
                Ok(Some(Value::String(out)))
            }
            other => Err(self.error(
                path,
                format!("{other} cannot be resolved outside CloudFormation"),
            )),
        }
    }

    /// What `Ref name` gives: a pseudo parameter, a parameter's default, or a resource's
    /// identifier as CloudFormation documents it for its type.
    fn reference(&self, name: &str, path: &str) -> Result<String, ImportError> {
        let target = self.template.target;
        match name {
            "AWS::Region" => return Ok(target.region.clone()),
            "AWS::AccountId" => return Ok(target.account_id.clone()),
            "AWS::Partition" => return Ok("aws".into()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".into()),
            "AWS::StackName" => return Ok(target.stack_name.clone()),
            _ => {}
        }
        if let Some(parameter) = self.template.parameters.and_then(|p| p.get(name)) {
            return match parameter.get("Default") {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
                _ => Err(self.error(path, format!("parameter {name} has no Default to use"))),
            };
        }
        let (kind, props) = self.resource_of(name, path)?;
        let region = &target.region;
        let account = &target.account_id;
        let named = |key: &str| prop_text(props, key).unwrap_or_else(|| name.to_string());
        Ok(match kind {
            "AWS::SNS::Topic" => format!("arn:aws:sns:{region}:{account}:{}", named("TopicName")),
            "AWS::S3::Bucket" => {
                prop_text(props, "BucketName").unwrap_or_else(|| name.to_lowercase())
            }
            "AWS::IAM::Role" => named("RoleName"),
            "AWS::CodeBuild::Project" | "AWS::CodePipeline::Pipeline" => named("Name"),
            "AWS::CodeCommit::Repository" => named("RepositoryName"),
            "AWS::ECR::Repository" => named("RepositoryName"),
            "AWS::Lambda::Function" => named("FunctionName"),
            "AWS::KMS::Alias" => named("AliasName"),
            "AWS::CodeStarConnections::Connection" => {
                format!("arn:aws:codestar-connections:{region}:{account}:connection/{name}")
            }
            _ => name.to_string(),
        })
    }

    /// What `Fn::GetAtt name.attribute` gives, for the attributes pipelines refer to.
    fn attribute(&self, name: &str, attribute: &str, path: &str) -> Result<String, ImportError> {
        let (kind, props) = self.resource_of(name, path)?;
        let region = &self.template.target.region;
        let account = &self.template.target.account_id;
        let named = |key: &str| prop_text(props, key).unwrap_or_else(|| name.to_string());
        let value = match (kind, attribute) {
            ("AWS::IAM::Role", "Arn") => format!("arn:aws:iam::{account}:role/{}", named("RoleName")),
            ("AWS::IAM::Role", "RoleId") => name.to_string(),
            ("AWS::S3::Bucket", "Arn") => format!(
                "arn:aws:s3:::{}",
                prop_text(props, "BucketName").unwrap_or_else(|| name.to_lowercase())
            ),
            ("AWS::KMS::Key", "Arn") => format!("arn:aws:kms:{region}:{account}:key/{name}"),
            ("AWS::KMS::Key", "KeyId") => name.to_string(),
            ("AWS::SNS::Topic", "TopicArn") => {
                format!("arn:aws:sns:{region}:{account}:{}", named("TopicName"))
            }
            ("AWS::SNS::Topic", "TopicName") => named("TopicName"),
            ("AWS::CodeBuild::Project", "Arn") => {
                format!("arn:aws:codebuild:{region}:{account}:project/{}", named("Name"))
            }
            ("AWS::CodeCommit::Repository", "Name") => named("RepositoryName"),
            ("AWS::CodeCommit::Repository", "Arn") => format!(
                "arn:aws:codecommit:{region}:{account}:{}",
                named("RepositoryName")
            ),
            ("AWS::Lambda::Function", "Arn") => format!(
                "arn:aws:lambda:{region}:{account}:function:{}",
                named("FunctionName")
            ),
            ("AWS::ECR::Repository", "Arn") => format!(
                "arn:aws:ecr:{region}:{account}:repository/{}",
                named("RepositoryName")
            ),
            ("AWS::CodeStarConnections::Connection", "ConnectionArn") => {
                format!("arn:aws:codestar-connections:{region}:{account}:connection/{name}")
            }
            _ => {
                return Err(self.error(
                    path,
                    format!("Fn::GetAtt {name}.{attribute} ({kind}) cannot be resolved outside CloudFormation"),
                ))
            }
        };
        Ok(value)
    }

    fn resource_of(&self, name: &str, path: &str) -> Result<(&str, &Value), ImportError> {
        let resource = self.template.resources.get(name).ok_or_else(|| {
            self.error(
                path,
                format!("{name} is neither a resource nor a parameter of the template"),
            )
        })?;
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        Ok((kind, resource.get("Properties").unwrap_or(&Value::Null)))
    }
}

/// A resource property that is a plain string.
fn prop_text(props: &Value, key: &str) -> Option<String> {
    props.get(key).and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests;
