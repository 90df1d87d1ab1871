//! The metadata log and state machine against openraft's own storage test
//! suite, and what survives reopening the files.

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::types::{Command, Entry, LogId, Meta, StorageError};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, EntryPayload, RaftLogReader, Vote};
use std::sync::Arc;

struct OnDisk;

impl StoreBuilder<Meta, LogStore, StateMachine, tempfile::TempDir> for OnDisk {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("dir");
        let log = LogStore::<Meta>::open(dir.path()).expect("log");
        let sm = StateMachine::open(
            dir.path(),
            super::state_machine::Hooks::none(),
            Default::default(),
        )
        .expect("state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn the_log_and_state_machine_pass_openraft_s_storage_suite() {
    Suite::test_all(OnDisk).expect("suite");
}

fn entry(term: u64, index: u64, name: &str) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Normal(Command::SetGlobalParameter {
            name: name.into(),
            value: serde_json::json!(index),
        }),
    }
}

#[tokio::test]
async fn appends_truncations_purges_and_the_vote_survive_reopening() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let mut log = LogStore::<Meta>::open(dir.path()).expect("open");
        assert!(log.is_fresh());
        log.save_vote(&Vote::new(3, 1)).await.expect("vote");
        log.blocking_append((1..=6).map(|i| entry(1, i, "a")))
            .await
            .expect("append");
        log.truncate(LogId::new(CommittedLeaderId::new(1, 1), 5))
            .await
            .expect("truncate");
        log.blocking_append([entry(2, 5, "b")])
            .await
            .expect("append");
        log.purge(LogId::new(CommittedLeaderId::new(1, 1), 2))
            .await
            .expect("purge");
    }
    // A torn last line (an append that never finished) is dropped.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("log.jsonl"))
            .expect("log file");
        f.write_all(b"{\"Entry\":{\"log_id\"").expect("torn write");
    }
    let mut log = LogStore::<Meta>::open(dir.path()).expect("reopen");
    assert!(!log.is_fresh());
    assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new(3, 1)));
    let state = log.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(2));
    assert_eq!(
        state.last_log_id,
        Some(LogId::new(CommittedLeaderId::new(2, 1), 5))
    );
    let left: Vec<(u64, u64)> = log
        .try_get_log_entries(0..100)
        .await
        .expect("entries")
        .iter()
        .map(|e| (e.log_id.leader_id.term, e.log_id.index))
        .collect();
    assert_eq!(left, vec![(1, 3), (1, 4), (2, 5)]);
}

/// A node stopped between writing a received snapshot and recording it as
/// applied finishes the install when it starts again: its state machine is
/// not left behind its own snapshot (openraft refuses that state), and the
/// broker gets the snapshot's definitions.
#[tokio::test]
async fn a_snapshot_install_cut_short_is_finished_on_reopen() {
    use openraft::storage::RaftStateMachine;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let mut leader = StateMachine::open(
        a.path(),
        super::state_machine::Hooks::none(),
        Default::default(),
    )
    .expect("open");
    leader
        .apply((1..=10).map(|i| entry(1, i, "x")))
        .await
        .expect("apply");
    let snapshot = {
        use openraft::RaftSnapshotBuilder;
        leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build")
    };
    let imports = Arc::new(AtomicUsize::new(0));
    let counting = || {
        let mut hooks = super::state_machine::Hooks::none();
        let n = imports.clone();
        hooks.import = Arc::new(move |_| {
            n.fetch_add(1, Ordering::SeqCst);
        });
        hooks
    };
    {
        let mut follower =
            StateMachine::open(b.path(), counting(), Default::default()).expect("open");
        follower
            .apply((1..=3).map(|i| entry(1, i, "x")))
            .await
            .expect("apply");
        let before = std::fs::read(b.path().join("applied.json")).expect("applied");
        follower
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .expect("install");
        // As if the node had stopped before applied.json was replaced.
        std::fs::write(b.path().join("applied.json"), before).expect("rewind");
    }
    assert_eq!(imports.load(Ordering::SeqCst), 1);
    let mut follower = StateMachine::open(b.path(), counting(), Default::default()).expect("open");
    let (applied, _) = follower.applied_state().await.expect("state");
    assert_eq!(applied, snapshot.meta.last_log_id);
    assert_eq!(imports.load(Ordering::SeqCst), 2, "the definitions again");
    drop(follower);
    // Recorded now: a second start has nothing to finish.
    let _ = StateMachine::open(b.path(), counting(), Default::default()).expect("open");
    assert_eq!(imports.load(Ordering::SeqCst), 2);
}
