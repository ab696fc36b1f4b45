//! The stored format is frozen: a fixed state (the harness's manual clock and counting ids)
//! encoded by `lockgate_engine::stored` must give the JSON of the golden files under
//! `tests/fixtures/stored-v<stored::FORMAT>` (compared byte for byte as pretty-printed with sorted keys, so
//! only the order of a body's fields may differ), and every golden record, of today's format
//! and of the older ones (`stored-v2`, ...), must read back to a state that encodes to today's
//! JSON. Anything that changes what goes on disk, a new field in an engine type or
//! a regenerated `lockgate-shapes` renaming one, fails here; such a change is made by adding a
//! format (`stored::FORMAT`) and its golden directory, never by editing these files.
//!
//! A golden directory that does not exist yet is written when `LOCKGATE_WRITE_GOLDEN=1` is set;
//! existing golden files are never rewritten.

use std::path::{Path, PathBuf};

use lockgate_engine::stored;
use lockgate_shapes::{ExecutionMode, Tag};
use lockgate_store::{Collection, Record, StoreError};
use serde_json::{json, Value};

use crate::harness::{Harness, MINUTE};
use crate::pipelines::{build_type, pipeline_in, source_type, standard_stages};

fn golden_dir() -> PathBuf {
    golden_dir_of(stored::FORMAT)
}

/// The golden directory of format `format`.
fn golden_dir_of(format: u64) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("stored-v{format}"))
}

/// A pipeline with one execution of each kind: succeeded, failed, waiting at its approval (with
/// a deadline), with a queued continuation job; and a disabled transition.
fn fixed_state() -> Harness {
    let mut h = Harness::new(pipeline_in(ExecutionMode::Parallel, standard_stages()));
    let first = h.latest();
    h.advance(MINUTE);
    h.succeed_job(&h.job_for(&first, "Source", "Checkout"))
        .expect("the source job succeeds");
    h.advance(MINUTE);
    h.approve(
        "Approve",
        "Approval",
        &h.token(&first, "Approve", "Approval"),
    )
    .expect("the approval is answered");
    h.advance(MINUTE);
    h.succeed_job(&h.job_for(&first, "Deploy", "Deploy"))
        .expect("the deploy job succeeds");

    h.advance(MINUTE);
    let failed = h.start().expect("a second execution starts");
    h.fail_job(&h.job_for(&failed, "Source", "Checkout"), "no such branch")
        .expect("the source job fails");

    h.advance(MINUTE);
    let waiting = h.start().expect("a third execution starts");
    h.succeed_job(&h.job_for(&waiting, "Source", "Checkout"))
        .expect("the source job succeeds");

    h.advance(MINUTE);
    let queued = h.start().expect("a fourth execution starts");
    h.continue_job(&h.job_for(&queued, "Source", "Checkout"), "page-2")
        .expect("the source job continues");

    h.advance(MINUTE);
    h.disable_inbound("Deploy")
        .expect("the transition is disabled");
    h
}

/// Every record the fixed state stores, by collection, as the store would hold them.
fn records(h: &Harness) -> Vec<(Collection, Vec<Record>)> {
    let state = h.state();
    let name = state.entry.declaration.name.clone();
    let executions: Vec<Record> = state
        .executions
        .iter()
        .map(|e| stored::execution::record(&name, e))
        .collect();
    let jobs: Vec<Record> = state
        .executions
        .iter()
        .flat_map(|e| e.jobs.iter())
        .map(|j| stored::job::place_record(&name, j))
        .collect();
    let versions: Vec<Record> = state
        .versions
        .iter()
        .map(|(v, d)| stored::pipeline::version_record(&name, *v, d))
        .collect();
    let tags = vec![stored::tags::record(
        "arn:aws:codepipeline:us-east-1:123456789012:p",
        &[Tag {
            key: "team".to_string(),
            value: "payments".to_string(),
        }],
    )];
    vec![
        (
            Collection::Pipeline,
            vec![stored::pipeline::entry_record(&state.entry)],
        ),
        (Collection::PipelineVersion, versions),
        (Collection::Execution, executions),
        (Collection::Job, jobs),
        (
            Collection::ActionType,
            vec![
                stored::action_type::record(&source_type()),
                stored::action_type::record(&build_type()),
            ],
        ),
        (Collection::Tags, tags),
    ]
}

/// Records in the layout of the fixture files (the same as `stored-v1`'s).
fn rows(records: &[Record]) -> String {
    let rows: Vec<Value> = records
        .iter()
        .map(|r| json!({"key": r.key, "parent": r.parent, "due_at": r.due_at, "body": r.body.value()}))
        .collect();
    serde_json::to_string_pretty(&rows).expect("records serialise") + "\n"
}

/// The records of one golden file.
fn read_rows(c: Collection, text: &str) -> Vec<Record> {
    let Value::Array(rows) = serde_json::from_str(text).expect("the golden file is JSON") else {
        panic!("a golden file holds an array of records");
    };
    rows.into_iter()
        .map(|row| {
            let mut r = Record::new(c, row["key"].as_str().expect("a key"), row["body"].clone());
            r.parent = row["parent"].as_str().map(str::to_string);
            r.due_at = row["due_at"].as_i64();
            r
        })
        .collect()
}

/// The record read with its collection's reader and written again.
fn reencoded(r: &Record) -> Result<Record, StoreError> {
    let parent = r.parent.clone().unwrap_or_default();
    Ok(match r.collection {
        Collection::Pipeline => stored::pipeline::entry_record(&stored::pipeline::read_entry(r)?),
        Collection::PipelineVersion => {
            let (name, version) = r.key.rsplit_once('/').expect("a version key");
            let version = version.parse().expect("a version number");
            stored::pipeline::version_record(name, version, &stored::pipeline::read_version(r)?)
        }
        Collection::Execution => stored::execution::record(&parent, &stored::execution::read(r)?),
        Collection::ActionType => stored::action_type::record(&stored::action_type::read(r)?),
        Collection::Tags => stored::tags::record(&r.key, &stored::tags::read(r)?),
        Collection::Job => {
            let place = stored::job::read_place(r)?;
            assert_eq!(place.pipeline, parent, "a job lives in its parent pipeline");
            r.clone()
        }
        other => panic!("no golden records of {other:?}"),
    })
}

#[test]
fn todays_stored_bodies_are_the_golden_ones() {
    let dir = golden_dir();
    let write = std::env::var_os("LOCKGATE_WRITE_GOLDEN").is_some();
    for (c, records) in records(&fixed_state()) {
        let file = dir.join(format!("{}.json", c.as_str()));
        let got = rows(&records);
        let want = match std::fs::read_to_string(&file) {
            Ok(want) => want,
            Err(_) if write => {
                std::fs::create_dir_all(&dir).expect("the golden directory is writable");
                std::fs::write(&file, &got).expect("the golden file is writable");
                got.clone()
            }
            Err(e) => panic!(
                "{} is missing ({e}); a new format's golden files are written with \
                 LOCKGATE_WRITE_GOLDEN=1",
                file.display()
            ),
        };
        assert!(
            got == want,
            "what is stored for {} changed; a change to the stored format needs a new format \
             version and golden directory (stored::FORMAT)\n--- golden\n{want}\n--- today\n{got}",
            c.as_str(),
        );
    }
}

#[test]
fn golden_records_read_back_to_the_same_bodies() {
    let dir = golden_dir();
    for (c, _) in records(&fixed_state()) {
        let file = dir.join(format!("{}.json", c.as_str()));
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{} is readable: {e}", file.display()));
        for r in read_rows(c, &text) {
            assert_eq!(
                r.body.value().get("format"),
                Some(&json!(stored::FORMAT)),
                "{}/{} carries its format",
                c.as_str(),
                r.key
            );
            let again = reencoded(&r)
                .unwrap_or_else(|e| panic!("{}/{} reads back: {e}", c.as_str(), r.key));
            // The same JSON; the text may order the fields differently (the golden files
            // were printed with sorted keys, bodies are encoded in field order).
            assert_eq!(
                again.body.value(),
                r.body.value(),
                "{}/{} reads back",
                c.as_str(),
                r.key
            );
            assert_eq!(
                again.parent,
                r.parent,
                "{}/{} keeps its parent",
                c.as_str(),
                r.key
            );
        }
    }
}

/// What an older release stored reads back to the state today's release stores: each golden
/// record of format 2 onwards, read and written again, is today's golden record with its key.
#[test]
fn golden_records_of_older_formats_read_back_as_todays() {
    for format in 2..stored::FORMAT {
        let old_dir = golden_dir_of(format);
        for (c, _) in records(&fixed_state()) {
            let name = format!("{}.json", c.as_str());
            let read = |dir: &Path| {
                let file = dir.join(&name);
                let text = std::fs::read_to_string(&file)
                    .unwrap_or_else(|e| panic!("{} is readable: {e}", file.display()));
                read_rows(c, &text)
            };
            let today = read(&golden_dir());
            let old = read(&old_dir);
            assert_eq!(
                old.len(),
                today.len(),
                "format {format}: {name} holds as many"
            );
            for r in old {
                let want = today
                    .iter()
                    .find(|t| t.key == r.key)
                    .unwrap_or_else(|| panic!("format {format}: {} is in today's {name}", r.key));
                let again = reencoded(&r).unwrap_or_else(|e| {
                    panic!("format {format}: {}/{} reads back: {e}", c.as_str(), r.key)
                });
                let (mut again, mut want) = (again.body.value(), want.body.value());
                if c == Collection::Job {
                    // A job's place is read, not written again: the same place, its own format.
                    for body in [&mut again, &mut want] {
                        body.as_object_mut().expect("an object").remove("format");
                    }
                }
                assert_eq!(
                    again,
                    want,
                    "format {format}: {}/{} reads back as today's",
                    c.as_str(),
                    r.key
                );
            }
        }
    }
}

#[test]
fn a_body_in_a_format_newer_than_this_build_is_refused_as_corrupt() {
    let h = fixed_state();
    let state = h.state();
    let mut r = stored::execution::record("p", &state.executions[0]);
    let mut body = r.body.value();
    body["format"] = json!(stored::FORMAT + 1);
    r.body = body.into();
    match stored::execution::read(&r) {
        Err(StoreError::Corrupt { key, reason, .. }) => {
            assert_eq!(state.executions[0].id, key);
            assert!(
                reason.contains("format"),
                "the reason names the format: {reason}"
            );
        }
        other => panic!("a newer format is refused, got {other:?}"),
    }
}

#[test]
fn a_body_without_a_format_is_read_as_format_1() {
    let h = fixed_state();
    let state = h.state();
    for e in &state.executions {
        let mut r = stored::execution::record("p", e);
        let mut body = r.body.value();
        body.as_object_mut()
            .expect("an execution is an object")
            .remove("format");
        r.body = body.into();
        let read = stored::execution::read(&r).expect("a format 1 execution reads");
        assert_eq!(
            stored::execution::record("p", &read).body,
            stored::execution::record("p", e).body
        );
    }
    let tags = [Tag {
        key: "team".to_string(),
        value: "payments".to_string(),
    }];
    let v1 = Record::new(
        Collection::Tags,
        "arn",
        serde_json::to_value(tags.clone()).expect("tags serialise"),
    );
    assert_eq!(stored::tags::read(&v1).expect("format 1 tags read"), tags);
    let decl = state.entry.declaration.clone();
    let v1 = Record::new(
        Collection::PipelineVersion,
        "p/0000000001",
        serde_json::to_value(&decl).expect("a declaration serialises"),
    );
    assert_eq!(
        stored::pipeline::read_version(&v1).expect("a format 1 version reads"),
        *decl
    );
}

#[test]
fn a_body_that_is_neither_an_object_nor_an_array_is_refused_as_corrupt() {
    let r = Record::new(Collection::Execution, "e-1", json!("just a string"));
    assert!(matches!(
        stored::execution::read(&r),
        Err(StoreError::Corrupt { key, .. }) if key == "e-1"
    ));
}
