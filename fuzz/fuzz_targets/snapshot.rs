#![no_main]
//! cargo-fuzz wrapper of `inregion_fuzz::snapshot` (the target's doc says what it checks).
libfuzzer_sys::fuzz_target!(|data: &[u8]| inregion_fuzz::snapshot(data));
