//! Fuzz target: SigV4: Authorization header or presigned query parsing, scope, date and signature checks (the body is `lockgate_fuzz::sigv4_request`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = lockgate_fuzz::sigv4_request(data);
});
