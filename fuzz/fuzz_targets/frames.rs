#![no_main]
//! See ferretmq::fuzzing::frames.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferretmq::fuzzing::frames(data));
