//! A vhost's durable definitions on disk: a snapshot (`definitions.json`)
//! and the changes made since, appended one JSON line each to
//! `definitions.<generation>.log` and fsynced once per change, so a change
//! costs what it changes rather than a rewrite of everything. When the log
//! grows long next to what it defines, a new snapshot is written and a new
//! log begins (compaction). Recovery reads the snapshot and replays its
//! log; a torn last line is a change whose -Ok was never sent, and is
//! dropped.

use super::definitions::{Change, Definitions};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

/// Lines a log may reach before it is compacted, at least.
const COMPACT_AFTER: usize = 1000;

pub(crate) struct DefinitionsLog {
    dir: PathBuf,
    /// What is on disk (snapshot plus log).
    current: Definitions,
    log: File,
    lines: usize,
}

impl DefinitionsLog {
    /// Read what `dir` holds (nothing yet is fine) and continue its log.
    pub(crate) fn open(dir: &Path) -> io::Result<(DefinitionsLog, Definitions)> {
        std::fs::create_dir_all(dir)?;
        let mut current = Definitions::load(&dir.join("definitions.json"))?;
        let path = log_path(dir, current.generation);
        let mut lines = 0;
        match File::open(&path) {
            Ok(f) => {
                for line in io::BufReader::new(f).lines() {
                    let line = line?;
                    match serde_json::from_str::<Change>(&line) {
                        Ok(c) => {
                            current.apply(c);
                            lines += 1;
                        }
                        Err(e) => {
                            tracing::warn!(
                                "{}: a torn change at its end is dropped: {e}",
                                path.display()
                            );
                            break;
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        remove_stale_logs(dir, current.generation);
        let mut log = DefinitionsLog {
            dir: dir.to_path_buf(),
            log: open_log(&path)?,
            current: current.clone(),
            lines,
        };
        if lines > 0 {
            // Start the next run from a clean snapshot (drops a torn tail).
            log.compact()?;
        }
        Ok((log, current))
    }

    /// Make `now` durable: append what changed since the last call and
    /// fsync once. Nothing changed, nothing written.
    pub(crate) fn record(&mut self, now: Definitions) -> io::Result<()> {
        let changes = self.current.diff(&Definitions {
            generation: self.current.generation,
            ..now
        });
        if changes.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for c in &changes {
            serde_json::to_writer(&mut buf, c).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        self.log.write_all(&buf)?;
        self.log.sync_data()?;
        for c in changes {
            self.lines += 1;
            self.current.apply(c);
        }
        if self.lines > COMPACT_AFTER.max(2 * self.current.len()) {
            self.compact()?;
        }
        Ok(())
    }

    /// Make one known change durable, without comparing everything: what a
    /// declare or bind of a durable entity costs with 100,000 of them.
    pub(crate) fn append(&mut self, change: Change) -> io::Result<()> {
        let mut buf = serde_json::to_vec(&change).map_err(io::Error::other)?;
        buf.push(b'\n');
        self.log.write_all(&buf)?;
        self.log.sync_data()?;
        self.lines += 1;
        self.current.apply(change);
        if self.lines > COMPACT_AFTER.max(2 * self.current.len()) {
            self.compact()?;
        }
        Ok(())
    }

    /// A new snapshot of everything, and an empty log after it.
    fn compact(&mut self) -> io::Result<()> {
        let next = self.current.generation + 1;
        let path = log_path(&self.dir, next);
        let log = open_log(&path)?;
        self.current.generation = next;
        // The snapshot names the new log: until it is in place the old
        // snapshot and log stay the truth.
        self.current.save(&self.dir.join("definitions.json"))?;
        self.log = log;
        self.lines = 0;
        remove_stale_logs(&self.dir, next);
        Ok(())
    }
}

fn log_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("definitions.{generation}.log"))
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn remove_stale_logs(dir: &Path, keep: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let keep = format!("definitions.{keep}.log");
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("definitions.") && name.ends_with(".log") && name != keep {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::definitions::{BindingDef, QueueDef};

    fn queue(name: &str) -> QueueDef {
        QueueDef {
            name: name.into(),
            auto_delete: false,
            arguments: Default::default(),
            incarnation: 0,
            replicas: Vec::new(),
        }
    }

    fn binding(q: &str) -> BindingDef {
        BindingDef {
            source: "amq.direct".into(),
            destination: q.into(),
            destination_type: "queue".into(),
            routing_key: q.into(),
            arguments: Default::default(),
        }
    }

    #[test]
    fn changes_replay_to_the_same_definitions_and_cost_a_line_each() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, start) = DefinitionsLog::open(dir.path()).expect("open");
        assert_eq!(start, Definitions::default());
        let mut defs = Definitions::default();
        for n in 0..50 {
            defs.queues.push(queue(&format!("q{n}")));
            defs.bindings.push(binding(&format!("q{n}")));
            log.record(defs.clone()).expect("record");
        }
        defs.queues.retain(|q| q.name != "q7");
        defs.bindings.retain(|b| b.destination != "q7");
        log.record(defs.clone()).expect("record");
        drop(log);
        let text = std::fs::read_to_string(dir.path().join("definitions.0.log")).expect("log");
        assert_eq!(text.lines().count(), 102, "one line per change: {text}");
        let (_, back) = DefinitionsLog::open(dir.path()).expect("reopen");
        assert_eq!(back.queues, defs.queues);
        assert_eq!(back.bindings, defs.bindings);
        // Reopening compacted into a new generation.
        assert!(dir.path().join("definitions.1.log").exists());
        assert!(!dir.path().join("definitions.0.log").exists());
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = DefinitionsLog::open(dir.path()).expect("open");
        let defs = Definitions {
            queues: vec![queue("kept")],
            ..Definitions::default()
        };
        log.record(defs).expect("record");
        drop(log);
        let mut f = open_log(&dir.path().join("definitions.0.log")).expect("log");
        f.write_all(br#"{"op":"put_queue","name":"tor"#)
            .expect("torn");
        drop(f);
        let (_, back) = DefinitionsLog::open(dir.path()).expect("reopen");
        let names: Vec<&str> = back.queues.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["kept"]);
    }

    #[test]
    fn a_long_log_is_compacted_into_a_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = DefinitionsLog::open(dir.path()).expect("open");
        let mut defs = Definitions::default();
        for n in 0..(COMPACT_AFTER + 10) {
            // The same queue declared and deleted: the log grows, the
            // definitions do not.
            defs.queues = if n % 2 == 0 { vec![queue("q")] } else { vec![] };
            log.record(defs.clone()).expect("record");
        }
        assert!(log.lines < 20, "compacted: {} lines left", log.lines);
        drop(log);
        let (_, back) = DefinitionsLog::open(dir.path()).expect("reopen");
        assert_eq!(back.queues, defs.queues);
    }

    #[test]
    fn appended_changes_agree_with_recorded_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = DefinitionsLog::open(dir.path()).expect("open");
        let mut defs = Definitions::default();
        for n in 0..20 {
            defs.queues.push(queue(&format!("q{n}")));
            log.append(Change::PutQueue(queue(&format!("q{n}"))))
                .expect("append");
            defs.bindings.push(binding(&format!("q{n}")));
            log.append(Change::Bind(binding(&format!("q{n}"))))
                .expect("append");
        }
        // A diff after appends sees only what is new.
        defs.queues.retain(|q| q.name != "q3");
        defs.bindings.retain(|b| b.destination != "q3");
        log.record(defs.clone()).expect("record");
        drop(log);
        let text = std::fs::read_to_string(dir.path().join("definitions.0.log")).expect("log");
        assert_eq!(text.lines().count(), 42, "{text}");
        let (_, back) = DefinitionsLog::open(dir.path()).expect("reopen");
        assert_eq!(back.queues, defs.queues);
        assert_eq!(back.bindings, defs.bindings);
    }
}
