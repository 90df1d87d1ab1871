//! The metadata log and state machine against openraft's own storage test
//! suite, and what survives reopening the files.

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::types::{Command, Entry, LogId, Meta, StorageError};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, EntryPayload, RaftLogReader, Vote};

struct OnDisk;

impl StoreBuilder<Meta, LogStore, StateMachine, tempfile::TempDir> for OnDisk {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("dir");
        let log = LogStore::open(dir.path()).expect("log");
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
        let mut log = LogStore::open(dir.path()).expect("open");
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
    let mut log = LogStore::open(dir.path()).expect("reopen");
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
