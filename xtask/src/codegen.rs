//! `cargo xtask codegen`: writes `crates/lockgate-shapes/src/generated.rs` from the service model.
//!
//! The generator reads botocore's `codepipeline-service-2.json` and emits one Rust type per structure and
//! enum shape, the `Operation` and `ErrorCode` enums, the `CodePipelineService` trait and `dispatch`. The
//! output is piped through `rustfmt` so the committed file is stable and readable.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context as _, Result};

use crate::json::Json;

/// Path of the service model, relative to the workspace root.
const MODEL_PATH: &str = "crates/lockgate-shapes/model/codepipeline-service-2.json";
/// Path of the generated file, relative to the workspace root.
pub const GENERATED_PATH: &str = "crates/lockgate-shapes/src/generated.rs";

/// Error codes every operation may return, whether or not the model lists them, with their HTTP status.
const COMMON_ERRORS: &[(&str, u16, &str)] = &[
    (
        "InternalFailure",
        500,
        "The request processing has failed because of an unknown error.",
    ),
    (
        "ServiceUnavailable",
        503,
        "The request has failed due to a temporary failure of the server.",
    ),
    (
        "ThrottlingException",
        400,
        "The request was denied due to request throttling.",
    ),
    (
        "SerializationException",
        400,
        "The request body could not be decoded into the operation's input.",
    ),
    (
        "UnknownOperationException",
        400,
        "The requested operation is not known to this server.",
    ),
    (
        "MissingAuthenticationTokenException",
        400,
        "The request did not include a signature.",
    ),
    (
        "UnrecognizedClientException",
        400,
        "The access key in the request is not known.",
    ),
    (
        "InvalidSignatureException",
        400,
        "The request signature does not match the one computed by the server.",
    ),
    (
        "IncompleteSignatureException",
        400,
        "The request signature is missing required parts.",
    ),
    (
        "AccessDeniedException",
        400,
        "The caller is not allowed to perform the operation.",
    ),
    (
        "NotImplemented",
        400,
        "The server does not implement the requested feature.",
    ),
];

/// The workspace root, derived from this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Entry point of `cargo xtask codegen`; with `check`, only reports whether the file is stale.
pub fn run(check: bool) -> Result<()> {
    let root = workspace_root();
    let code = generate_formatted(&root)?;
    let path = root.join(GENERATED_PATH);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == code {
        eprintln!("{GENERATED_PATH} is up to date");
        return Ok(());
    }
    if check {
        bail!("{GENERATED_PATH} is stale; run `cargo xtask codegen`");
    }
    std::fs::write(&path, code).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {GENERATED_PATH}");
    Ok(())
}

/// Reads the model under `root`, generates the code and formats it with `rustfmt`.
pub fn generate_formatted(root: &Path) -> Result<String> {
    let path = root.join(MODEL_PATH);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let model = Model::parse(&text)?;
    let code = generate(&model)?;
    rustfmt(&code)
}

/// Formats Rust source with `rustfmt --edition 2021`, reading stdin and writing stdout.
fn rustfmt(code: &str) -> Result<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running rustfmt (is it installed? `rustup component add rustfmt`)")?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = code.to_owned();
    // Write from another thread so a large output cannot fill the pipe and deadlock both processes.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().context("waiting for rustfmt")?;
    writer
        .join()
        .map_err(|_| anyhow!("rustfmt writer thread panicked"))?
        .context("writing to rustfmt")?;
    if !output.status.success() {
        bail!(
            "rustfmt failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).context("rustfmt output is not UTF-8")
}

/// The parts of the botocore model that the generator uses.
struct Model {
    shapes: BTreeMap<String, Shape>,
    /// Shape names in model order.
    shape_order: Vec<String>,
    operations: Vec<Op>,
}

struct Shape {
    kind: String,
    doc: Option<String>,
    members: Vec<Member>,
    required: BTreeSet<String>,
    enum_values: Vec<String>,
    list_member: Option<String>,
    map_value: Option<String>,
    exception: bool,
    http_status: Option<u16>,
}

struct Member {
    name: String,
    target: String,
    doc: Option<String>,
}

struct Op {
    name: String,
    input: Option<String>,
    output: Option<String>,
    errors: Vec<String>,
    doc: Option<String>,
}

impl Model {
    fn parse(text: &str) -> Result<Model> {
        let json = Json::parse(text).context("parsing the service model")?;
        let shapes_json = json
            .get("shapes")
            .and_then(Json::as_object)
            .ok_or_else(|| anyhow!("model has no shapes"))?;
        let mut shapes = BTreeMap::new();
        let mut shape_order = Vec::new();
        for (name, s) in shapes_json {
            let kind = s
                .get("type")
                .and_then(Json::as_str)
                .ok_or_else(|| anyhow!("shape {name} has no type"))?
                .to_owned();
            let target = |key: &str| {
                s.get(key)
                    .and_then(|m| m.get("shape"))
                    .and_then(Json::as_str)
                    .map(str::to_owned)
            };
            let members = s
                .get("members")
                .and_then(Json::as_object)
                .unwrap_or_default()
                .iter()
                .map(|(mname, m)| {
                    Ok(Member {
                        name: mname.clone(),
                        target: m
                            .get("shape")
                            .and_then(Json::as_str)
                            .ok_or_else(|| anyhow!("member {name}.{mname} has no shape"))?
                            .to_owned(),
                        doc: m
                            .get("documentation")
                            .and_then(Json::as_str)
                            .map(str::to_owned),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let strings = |key: &str| -> Vec<String> {
                s.get(key)
                    .and_then(Json::as_array)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(Json::as_str)
                    .map(str::to_owned)
                    .collect()
            };
            let shape = Shape {
                kind,
                doc: s
                    .get("documentation")
                    .and_then(Json::as_str)
                    .map(str::to_owned),
                members,
                required: strings("required").into_iter().collect(),
                enum_values: strings("enum"),
                list_member: target("member"),
                map_value: target("value"),
                exception: s.get("exception").and_then(Json::as_bool).unwrap_or(false),
                http_status: s
                    .get("error")
                    .and_then(|e| e.get("httpStatusCode"))
                    .and_then(Json::as_i64)
                    .and_then(|n| u16::try_from(n).ok()),
            };
            shape_order.push(name.clone());
            shapes.insert(name.clone(), shape);
        }
        let ops_json = json
            .get("operations")
            .and_then(Json::as_object)
            .ok_or_else(|| anyhow!("model has no operations"))?;
        let operations = ops_json
            .iter()
            .map(|(name, o)| {
                let shape = |key: &str| {
                    o.get(key)
                        .and_then(|m| m.get("shape"))
                        .and_then(Json::as_str)
                        .map(str::to_owned)
                };
                Op {
                    name: name.clone(),
                    input: shape("input"),
                    output: shape("output"),
                    errors: o
                        .get("errors")
                        .and_then(Json::as_array)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|e| e.get("shape").and_then(Json::as_str))
                        .map(str::to_owned)
                        .collect(),
                    doc: o
                        .get("documentation")
                        .and_then(Json::as_str)
                        .map(str::to_owned),
                }
            })
            .collect();
        Ok(Model {
            shapes,
            shape_order,
            operations,
        })
    }

    fn shape(&self, name: &str) -> Result<&Shape> {
        self.shapes
            .get(name)
            .ok_or_else(|| anyhow!("shape {name} is referenced but not defined"))
    }

    /// Whether `from` reaches `to` through structure members that are stored inline (not behind a
    /// `Vec` or map, which already add indirection).
    fn reaches_inline(&self, from: &str, to: &str, seen: &mut BTreeSet<String>) -> bool {
        if !seen.insert(from.to_owned()) {
            return false;
        }
        let Some(shape) = self.shapes.get(from) else {
            return false;
        };
        shape.members.iter().any(|m| {
            self.shapes
                .get(&m.target)
                .is_some_and(|t| t.kind == "structure")
                && (m.target == to || self.reaches_inline(&m.target, to, seen))
        })
    }

    /// The Rust type of a member targeting `target` (without the `Option` for optional members).
    fn rust_type(&self, owner: &str, target: &str) -> Result<String> {
        let shape = self.shape(target)?;
        Ok(match shape.kind.as_str() {
            "string" if shape.enum_values.is_empty() => "String".to_owned(),
            "string" => target.to_owned(),
            "integer" => "i32".to_owned(),
            "long" => "i64".to_owned(),
            "boolean" => "bool".to_owned(),
            "double" => "f64".to_owned(),
            "float" => "f32".to_owned(),
            "timestamp" => "crate::Timestamp".to_owned(),
            "list" => {
                let member = shape
                    .list_member
                    .as_deref()
                    .ok_or_else(|| anyhow!("list {target} has no member"))?;
                format!("Vec<{}>", self.rust_type(owner, member)?)
            }
            "map" => {
                let value = shape
                    .map_value
                    .as_deref()
                    .ok_or_else(|| anyhow!("map {target} has no value"))?;
                format!(
                    "std::collections::BTreeMap<String, {}>",
                    self.rust_type(owner, value)?
                )
            }
            "structure" => {
                if target == owner || self.reaches_inline(target, owner, &mut BTreeSet::new()) {
                    format!("Box<{target}>")
                } else {
                    target.to_owned()
                }
            }
            other => bail!("shape {target} has unsupported type {other}"),
        })
    }
}

/// Converts a model member or operation name to a Rust snake_case identifier.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None => false,
                Some(p) => {
                    p.is_ascii_lowercase()
                        || p.is_ascii_digit()
                        || (p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
                }
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '-' || c == '.' || c == ' ' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

/// Makes `ident` usable as a field or method name, using a raw identifier for keywords.
fn field_ident(ident: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do",
        "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in",
        "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
        "return", "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe",
        "unsized", "use", "virtual", "where", "while", "yield",
    ];
    if KEYWORDS.contains(&ident) {
        format!("r#{ident}")
    } else {
        ident.to_owned()
    }
}

/// Converts an enum value such as `FAILED_ACTIONS`, `InProgress` or `V2` to an UpperCamelCase variant.
pub fn variant_name(value: &str) -> String {
    let mut out = String::new();
    for word in value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        // A word with no lower-case letters is a SHOUTING word: keep only its first letter capital.
        let shouting = !word.chars().any(|c| c.is_ascii_lowercase());
        for (i, c) in word.chars().enumerate() {
            if i == 0 {
                out.push(c.to_ascii_uppercase());
            } else if shouting {
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    out
}

/// Turns model HTML documentation into a short plain-text summary: the first sentence, or the first two
/// when the first is short.
fn summarize(html: &str) -> Option<String> {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            rest = &rest[start..];
            break;
        };
        let tag = &rest[start + 1..start + end];
        if tag == "code" || tag == "/code" {
            text.push('`');
        } else {
            text.push(' ');
        }
        rest = &rest[start + end + 1..];
    }
    text.push_str(rest);
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return None;
    }
    let mut summary = String::new();
    let mut sentences = 0;
    for word in &words {
        if !summary.is_empty() {
            summary.push(' ');
        }
        summary.push_str(word);
        let ends_sentence = (word.ends_with('.') || word.ends_with('?') || word.ends_with('!'))
            && !word.ends_with("e.g.")
            && !word.ends_with("i.e.")
            && !word.ends_with("etc.");
        if ends_sentence {
            sentences += 1;
            if sentences == 2 || summary.len() > 80 {
                break;
            }
        }
    }
    // Backticks that do not pair up would swallow the rest of the page into a code span.
    if summary.matches('`').count() % 2 == 1 {
        summary = summary.replace('`', "");
    }
    // Outside code spans, characters rustdoc would read as links, HTML or emphasis are escaped.
    let mut escaped = String::with_capacity(summary.len());
    let mut in_code = false;
    for c in summary.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code && matches!(c, '[' | ']' | '<' | '>' | '*' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    Some(escaped)
}

/// Writes `text` as `///` lines wrapped near 96 columns.
fn write_doc(out: &mut String, text: &str) {
    let mut line = String::new();
    for word in text.split(' ') {
        // A continuation line must not start like a Markdown block (a list item, heading or quote),
        // so such words stay on the current line.
        let starts_block = word.starts_with(['-', '+', '#', '=', '|'])
            || word.starts_with("\\>")
            || word.starts_with("\\*")
            || (word.starts_with(|c: char| c.is_ascii_digit())
                && word
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .starts_with(['.', ')']));
        if !line.is_empty() && line.len() + word.len() > 96 && !starts_block {
            let _ = writeln!(out, "/// {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "/// {line}");
    }
}

/// Writes the documentation `html`, or `fallback` when the model has none.
fn write_doc_or(out: &mut String, html: Option<&str>, fallback: &str) {
    match html.and_then(summarize) {
        Some(text) => write_doc(out, &text),
        None => write_doc(out, fallback),
    }
}

/// Generates the unformatted source of `generated.rs`.
fn generate(model: &Model) -> Result<String> {
    let mut out = String::new();
    out.push_str(
        "// generated by cargo xtask codegen; do not edit\n\
         //! Every shape, operation and error code of the CodePipeline service model.\n\
         //!\n\
         //! This file is generated by `cargo xtask codegen` from `model/codepipeline-service-2.json`;\n\
         //! change the generator in `xtask/src/codegen.rs`, not this file.\n\n\
         // The `Result` enum of the model shadows the prelude type here, so the code below always spells\n\
         // out `std::result::Result`.\n\n",
    );
    for name in &model.shape_order {
        let shape = model.shape(name)?;
        match shape.kind.as_str() {
            "structure" => gen_struct(&mut out, model, name, shape)?,
            "string" if !shape.enum_values.is_empty() => gen_enum(&mut out, name, shape),
            _ => {}
        }
    }
    gen_operations(&mut out, model)?;
    gen_error_codes(&mut out, model)?;
    gen_service(&mut out, model)?;
    Ok(out)
}

fn gen_struct(out: &mut String, model: &Model, name: &str, shape: &Shape) -> Result<()> {
    write_doc_or(
        out,
        shape.doc.as_deref(),
        &format!("The `{name}` structure of the service model."),
    );
    out.push_str(
        "#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]\n",
    );
    let _ = writeln!(out, "pub struct {name} {{");
    let mut seen = BTreeSet::new();
    for member in &shape.members {
        let ident = field_ident(&snake_case(&member.name));
        if !seen.insert(ident.clone()) {
            bail!("two members of {name} map to the field name {ident}");
        }
        let target_doc = model.shape(&member.target)?.doc.as_deref();
        write_doc_or(
            out,
            member.doc.as_deref().or(target_doc),
            &format!("The `{}` member.", member.name),
        );
        let ty = model.rust_type(name, &member.target)?;
        if shape.required.contains(&member.name) {
            let _ = writeln!(out, "#[serde(rename = \"{}\")]", member.name);
            let _ = writeln!(out, "pub {ident}: {ty},");
        } else {
            let _ = writeln!(
                out,
                "#[serde(rename = \"{}\", default, skip_serializing_if = \"Option::is_none\")]",
                member.name
            );
            let _ = writeln!(out, "pub {ident}: Option<{ty}>,");
        }
    }
    out.push_str("}\n\n");
    Ok(())
}

fn gen_enum(out: &mut String, name: &str, shape: &Shape) {
    write_doc_or(
        out,
        shape.doc.as_deref(),
        &format!("The `{name}` values of the service model."),
    );
    out.push_str(
        "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]\n",
    );
    let _ = writeln!(out, "pub enum {name} {{");
    let variants: Vec<(String, &str)> = shape
        .enum_values
        .iter()
        .map(|v| (variant_name(v), v.as_str()))
        .collect();
    for (i, (variant, value)) in variants.iter().enumerate() {
        let _ = writeln!(out, "/// The wire value `{value}`.");
        if i == 0 {
            out.push_str("#[default]\n");
        }
        let _ = writeln!(out, "#[serde(rename = \"{value}\")]\n{variant},");
    }
    out.push_str("}\n\n");
    let _ = writeln!(out, "impl {name} {{");
    out.push_str("/// Every value, in model order.\npub const ALL: &[Self] = &[");
    for (variant, _) in &variants {
        let _ = write!(out, "Self::{variant},");
    }
    out.push_str("];\n\n/// The value as it appears on the wire.\npub fn as_str(&self) -> &'static str {\nmatch self {\n");
    for (variant, value) in &variants {
        let _ = writeln!(out, "Self::{variant} => \"{value}\",");
    }
    out.push_str("}\n}\n}\n\n");
    let _ = writeln!(out, "impl std::str::FromStr for {name} {{");
    out.push_str(
        "type Err = ();\n\nfn from_str(s: &str) -> std::result::Result<Self, ()> {\nmatch s {\n",
    );
    for (variant, value) in &variants {
        let _ = writeln!(out, "\"{value}\" => Ok(Self::{variant}),");
    }
    out.push_str("_ => Err(()),\n}\n}\n}\n\n");
    let _ = writeln!(out, "impl std::fmt::Display for {name} {{");
    out.push_str(
        "fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\nf.write_str(self.as_str())\n}\n}\n\n",
    );
}

fn gen_operations(out: &mut String, model: &Model) -> Result<()> {
    out.push_str("/// Every operation of the service model.\n");
    out.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\npub enum Operation {\n");
    for op in &model.operations {
        write_doc_or(
            out,
            op.doc.as_deref(),
            &format!("The `{}` operation.", op.name),
        );
        let _ = writeln!(out, "{},", op.name);
    }
    out.push_str("}\n\nimpl Operation {\n/// Every operation, in model order.\npub const ALL: &[Operation] = &[");
    for op in &model.operations {
        let _ = write!(out, "Operation::{},", op.name);
    }
    out.push_str("];\n\n/// The operation name as it appears in `X-Amz-Target` and RPC v2 paths.\npub fn name(&self) -> &'static str {\nmatch self {\n");
    for op in &model.operations {
        let _ = writeln!(out, "Operation::{0} => \"{0}\",", op.name);
    }
    out.push_str("}\n}\n\n/// The operation with the given name.\npub fn from_name(name: &str) -> Option<Self> {\nmatch name {\n");
    for op in &model.operations {
        let _ = writeln!(out, "\"{0}\" => Some(Operation::{0}),", op.name);
    }
    out.push_str("_ => None,\n}\n}\n\n");
    for (fn_name, doc, pick) in [
        (
            "input_shape",
            "The name of the input structure, if the operation takes one.",
            0,
        ),
        (
            "output_shape",
            "The name of the output structure, if the operation returns one.",
            1,
        ),
    ] {
        let _ = writeln!(
            out,
            "/// {doc}\npub fn {fn_name}(&self) -> Option<&'static str> {{\nmatch self {{"
        );
        for op in &model.operations {
            let shape = if pick == 0 { &op.input } else { &op.output };
            match shape {
                Some(s) => {
                    let _ = writeln!(out, "Operation::{} => Some(\"{s}\"),", op.name);
                }
                None => {
                    let _ = writeln!(out, "Operation::{} => None,", op.name);
                }
            }
        }
        out.push_str("}\n}\n\n");
    }
    out.push_str("/// The errors the model declares for the operation (the common codes are always allowed too).\npub fn errors(&self) -> &'static [ErrorCode] {\nmatch self {\n");
    for op in &model.operations {
        let _ = write!(out, "Operation::{} => &[", op.name);
        for e in &op.errors {
            if !model.shape(e)?.exception {
                bail!(
                    "operation {} declares {e}, which is not an exception",
                    op.name
                );
            }
            let _ = write!(out, "ErrorCode::{e},");
        }
        out.push_str("],\n");
    }
    out.push_str("}\n}\n}\n\n");
    out.push_str("impl std::fmt::Display for Operation {\nfn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\nf.write_str(self.name())\n}\n}\n\n");
    Ok(())
}

fn gen_error_codes(out: &mut String, model: &Model) -> Result<()> {
    let mut codes: Vec<(String, u16, Option<String>, bool)> = Vec::new();
    for name in &model.shape_order {
        let shape = model.shape(name)?;
        if shape.exception {
            let doc = shape.doc.as_deref().and_then(summarize);
            codes.push((name.clone(), shape.http_status.unwrap_or(400), doc, false));
        }
    }
    for (name, status, doc) in COMMON_ERRORS {
        if codes.iter().any(|(n, ..)| n == name) {
            bail!("common error {name} is also an exception shape of the model");
        }
        codes.push(((*name).to_owned(), *status, Some((*doc).to_owned()), true));
    }
    out.push_str("/// Every error code the service can return: the model's exception shapes and the common AWS codes.\n");
    out.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\npub enum ErrorCode {\n");
    for (name, _, doc, _) in &codes {
        match doc {
            Some(doc) => write_doc(out, doc),
            None => write_doc(out, &format!("The `{name}` error.")),
        }
        let _ = writeln!(out, "{name},");
    }
    out.push_str("}\n\nimpl ErrorCode {\n/// Every error code: the model's exceptions in model order, then the common codes.\npub const ALL: &[ErrorCode] = &[");
    for (name, ..) in &codes {
        let _ = write!(out, "ErrorCode::{name},");
    }
    out.push_str("];\n\n/// The code as sent in `__type`, e.g. `ValidationException`.\npub fn as_str(&self) -> &'static str {\nmatch self {\n");
    for (name, ..) in &codes {
        let _ = writeln!(out, "ErrorCode::{name} => \"{name}\",");
    }
    out.push_str("}\n}\n\n/// The error code with the given `__type` name.\npub fn from_name(name: &str) -> Option<Self> {\nmatch name {\n");
    for (name, ..) in &codes {
        let _ = writeln!(out, "\"{name}\" => Some(ErrorCode::{name}),");
    }
    out.push_str("_ => None,\n}\n}\n\n/// The HTTP status code the error is sent with.\npub fn http_status(&self) -> u16 {\nmatch self {\n");
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for (name, status, ..) in &codes {
        by_status.entry(*status).or_default().push(name);
    }
    let default_status = 400;
    for (status, names) in &by_status {
        if *status == default_status {
            continue;
        }
        let arms: Vec<String> = names.iter().map(|n| format!("ErrorCode::{n}")).collect();
        let _ = writeln!(out, "{} => {status},", arms.join(" | "));
    }
    let _ = writeln!(out, "_ => {default_status},");
    out.push_str("}\n}\n\n/// Whether the code is one of the common AWS codes that every operation may return.\npub fn is_common(&self) -> bool {\nmatches!(self, ");
    let common: Vec<String> = codes
        .iter()
        .filter(|c| c.3)
        .map(|c| format!("ErrorCode::{}", c.0))
        .collect();
    out.push_str(&common.join(" | "));
    out.push_str(")\n}\n}\n\n");
    out.push_str("impl std::fmt::Display for ErrorCode {\nfn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\nf.write_str(self.as_str())\n}\n}\n\n");
    Ok(())
}

fn gen_service(out: &mut String, model: &Model) -> Result<()> {
    out.push_str(
        "/// The service the API layer dispatches to: one method per operation of the model.\n\
         ///\n\
         /// Every method has a default body that answers `UnknownOperationException`, so an implementation\n\
         /// only overrides the operations it supports.\n\
         #[async_trait::async_trait]\n\
         pub trait CodePipelineService: Send + Sync + 'static {\n\
         /// Per-request context, e.g. the authenticated caller.\n\
         type Context: Send + Sync;\n\n",
    );
    for op in &model.operations {
        let method = snake_case(&op.name);
        let input = op
            .input
            .as_deref()
            .ok_or_else(|| anyhow!("operation {} has no input shape", op.name))?;
        let output = op.output.as_deref().unwrap_or("()");
        write_doc_or(
            out,
            op.doc.as_deref(),
            &format!("The `{}` operation.", op.name),
        );
        let _ = writeln!(
            out,
            "async fn {method}(&self, ctx: &Self::Context, input: {input}) -> std::result::Result<{output}, crate::ServiceError> {{\n\
             let _ = (ctx, input);\n\
             Err(crate::ServiceError::not_implemented(Operation::{}))\n}}\n",
            op.name
        );
    }
    out.push_str("}\n\n");
    out.push_str(
        "/// Decodes `input` (already constraint-checked JSON value) into the typed input, calls the method,\n\
         /// and encodes the typed output straight into a body in `encoding` (`{}` when no output).\n\
         ///\n\
         /// A typed-decode failure is a `SerializationException` carrying serde's message.\n\
         pub async fn dispatch<S: CodePipelineService + ?Sized>(\n\
         svc: &S,\n\
         ctx: &S::Context,\n\
         op: Operation,\n\
         input: serde_json::Value,\n\
         encoding: crate::Encoding,\n\
         ) -> std::result::Result<bytes::Bytes, crate::ServiceError> {\n\
         match op {\n",
    );
    for op in &model.operations {
        let method = snake_case(&op.name);
        let input = op.input.as_deref().unwrap_or_default();
        if op.output.is_some() {
            let _ = writeln!(
                out,
                "Operation::{} => {{\nlet input: {input} = decode_input(input)?;\nencoding.encode(&svc.{method}(ctx, input).await?)\n}}",
                op.name
            );
        } else {
            let _ = writeln!(
                out,
                "Operation::{} => {{\nlet input: {input} = decode_input(input)?;\nsvc.{method}(ctx, input).await?;\nOk(encoding.empty_structure())\n}}",
                op.name
            );
        }
    }
    out.push_str("}\n}\n\n");
    out.push_str(
        "/// Decodes a JSON input into its typed structure; a missing body or `null` counts as `{}`.\n\
         fn decode_input<T: serde::de::DeserializeOwned>(input: serde_json::Value) -> std::result::Result<T, crate::ServiceError> {\n\
         let input = if input.is_null() { serde_json::Value::Object(serde_json::Map::new()) } else { input };\n\
         serde_json::from_value(input).map_err(|e| crate::ServiceError::new(ErrorCode::SerializationException, e.to_string()))\n\
         }\n",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_follows_the_naming_rules() {
        assert_eq!(snake_case("roleArn"), "role_arn");
        assert_eq!(snake_case("NextToken"), "next_token");
        assert_eq!(snake_case("actionTypeId"), "action_type_id");
        assert_eq!(snake_case("logStreamARN"), "log_stream_arn");
        assert_eq!(snake_case("s3Location"), "s3_location");
        assert_eq!(snake_case("AllowedIPRange"), "allowed_ip_range");
        assert_eq!(snake_case("PutApprovalResult"), "put_approval_result");
        assert_eq!(field_ident(&snake_case("type")), "r#type");
    }

    #[test]
    fn variant_names_follow_the_naming_rules() {
        assert_eq!(variant_name("InProgress"), "InProgress");
        assert_eq!(variant_name("FAILED_ACTIONS"), "FailedActions");
        assert_eq!(variant_name("QUEUED"), "Queued");
        assert_eq!(variant_name("V2"), "V2");
        assert_eq!(variant_name("S3"), "S3");
        assert_eq!(variant_name("Approved"), "Approved");
        assert_eq!(variant_name("S3_OBJECT_VERSION_ID"), "S3ObjectVersionId");
    }

    #[test]
    fn summaries_strip_html_and_keep_the_first_sentences() {
        let doc = "<p>Represents the input of a <code>PutApprovalResult</code> action. More. Even more.</p>";
        assert_eq!(
            summarize(doc).as_deref(),
            Some("Represents the input of a `PutApprovalResult` action. More.")
        );
    }

    /// The rust-analyzer `ensure_file_contents` pattern: regenerate in memory, and when the committed
    /// file differs, update it and fail so the change gets noticed and committed.
    #[test]
    fn generated_code_is_fresh() {
        let root = workspace_root();
        let expected = generate_formatted(&root).expect("generating the shapes");
        let path = root.join(GENERATED_PATH);
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        if actual != expected {
            std::fs::write(&path, &expected).expect("updating generated.rs");
            panic!(
                "{GENERATED_PATH} was not up to date and has been regenerated; \
                 review and commit it (or run `cargo xtask codegen`), then rerun the tests"
            );
        }
    }
}
