//! Fuzz target: RPC v2 CBOR request bodies: CBOR decode, check_input, typed decode (the body is `lockgate_fuzz::cbor_input`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = lockgate_fuzz::cbor_input(data);
});
