#![no_main]
//! See ferretmq::fuzzing::handshake.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferretmq::fuzzing::handshake(data));
