#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| snag::fuzz::run("search", data));
