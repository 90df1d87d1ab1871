//! Removing a drained segment. The kernel evicts a file's cached pages when
//! its last handle closes after the unlink: for a 16 MiB segment that is
//! most of a millisecond, and a queue deletes its segments under its lock,
//! in the middle of delivering. So the file is unlinked while a handle to
//! it is still open (which is cheap), and that handle is closed on a
//! blocking thread, which pays for the eviction.

use std::fs::{self, File};
use std::io;
use std::path::Path;

/// Remove `path`; `open` is a handle to it the caller held, if any. A file
/// that is not there (a segment rolled past before its first write) is
/// no error.
pub(crate) fn remove_segment(path: &Path, open: Option<File>) -> io::Result<()> {
    let held = open.or_else(|| File::open(path).ok());
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    if let Some(file) = held {
        close_elsewhere(file);
    }
    Ok(())
}

fn close_elsewhere(file: File) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(move || drop(file))),
        // Outside the broker's runtime (a unit test): close it here.
        Err(_) => drop(file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_removed_with_or_without_a_handle_and_a_missing_one_is_fine() {
        let dir = tempfile::tempdir().expect("dir");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, b"x").expect("a");
        fs::write(&b, b"y").expect("b");
        let handle = File::open(&a).expect("open");
        remove_segment(&a, Some(handle)).expect("a");
        remove_segment(&b, None).expect("b");
        remove_segment(&dir.path().join("never"), None).expect("missing");
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[tokio::test]
    async fn on_the_runtime_the_handle_is_closed_on_a_blocking_thread() {
        let dir = tempfile::tempdir().expect("dir");
        let a = dir.path().join("a");
        fs::write(&a, b"x").expect("a");
        remove_segment(&a, None).expect("a");
        assert!(!a.exists());
    }
}
