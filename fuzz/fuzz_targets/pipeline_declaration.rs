//! Fuzz target: Pipeline declarations: constraint checks, typed decode, validate_pipeline (the body is `lockgate_fuzz::pipeline_declaration`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = lockgate_fuzz::pipeline_declaration(data);
});
