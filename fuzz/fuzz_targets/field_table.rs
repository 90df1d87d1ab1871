#![no_main]
//! See ferretmq::fuzzing::field_table.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferretmq::fuzzing::field_table(data));
