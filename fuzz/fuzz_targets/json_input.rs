//! Fuzz target: awsJson1.1 request bodies: JSON decode, check_input, typed decode (the body is `lockgate_fuzz::json_input`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = lockgate_fuzz::json_input(data);
});
