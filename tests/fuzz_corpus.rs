//! Every input of the fuzz corpora (fuzz/corpus/TARGET) replayed through
//! its target's entry point: what libFuzzer once found interesting, and
//! every crash fixed since, stays covered by the ordinary test run.

fn replay(target: &str, f: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = e.expect("entry").path();
        f(&std::fs::read(&path).expect("read"));
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", dir.display());
}

#[test]
fn the_frames_corpus_parses_without_panicking() {
    replay("frames", ferretmq::fuzzing::frames);
}

#[test]
fn the_field_table_corpus_parses_without_panicking() {
    replay("field_table", ferretmq::fuzzing::field_table);
}

#[test]
fn the_handshake_corpus_runs_without_panicking() {
    replay("handshake", ferretmq::fuzzing::handshake);
}
