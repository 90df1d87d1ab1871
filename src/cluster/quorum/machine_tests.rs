//! A quorum queue member's state machine without a cluster: what it
//! applies reaches its log once, and a snapshot of it installs elsewhere
//! as the same messages.

use super::machine::{Paths, QueueMachine, Target};
use super::snapshot::Data;
use super::types::QCommand;
use crate::message::{Message, Meter};
use crate::store::SyncState;
use crate::store::queue_log::QueueLog;
use base64::Engine;
use bytes::Bytes;
use std::sync::{Arc, Mutex};

fn record(n: u8, meter: Meter) -> String {
    let props = amq_protocol::protocol::BasicProperties::default();
    let header = crate::message::encode_header(&props, 1);
    let m = Message::new(
        "".into(),
        "q".into(),
        props,
        header,
        Bytes::from(vec![n]),
        meter,
    );
    let mut out = Vec::new();
    crate::store::record::encode_publish(0, 0, &m, &mut out);
    base64::engine::general_purpose::STANDARD.encode(out)
}

fn member(dir: &std::path::Path, meter: Meter) -> QueueMachine {
    let queue_dir = dir.join("queue");
    let (log, _) = QueueLog::open(&queue_dir, SyncState::unsynced(), meter).expect("log");
    let target = Arc::new(Mutex::new(Target::Replica(Box::new(log))));
    let paths = Paths {
        dir,
        queue_dir,
        sync: SyncState::unsynced(),
        every: 10,
    };
    QueueMachine::new(
        target,
        meter,
        std::sync::Weak::new(),
        "/".into(),
        paths,
        Default::default(),
    )
}

fn bodies(m: &QueueMachine) -> Vec<(u64, u8)> {
    m.records_for_test()
        .into_iter()
        .map(|(seq, r)| (seq, *r.last().expect("a body")))
        .collect()
}

#[test]
fn entries_reach_the_log_once_and_a_snapshot_installs_as_the_same_messages() {
    let meter = Meter::new();
    let a = tempfile::tempdir().expect("dir");
    let mut m = member(a.path(), meter);
    for (seq, n) in [(3, 1u8), (4, 2), (6, 3)] {
        let c = QCommand::Enqueue {
            expires: 0,
            message: record(n, meter),
        };
        assert!(m.apply_for_test(seq, c.clone()));
        // The same entry again (after a restart): skipped.
        assert!(m.apply_for_test(seq, c));
    }
    assert!(m.apply_for_test(7, QCommand::Settle { seqs: vec![4] }));
    assert_eq!(bodies(&m), vec![(3, 1), (6, 3)]);

    let data = Data::of(m.records_for_test());
    let b = tempfile::tempdir().expect("dir");
    let mut other = member(b.path(), meter);
    assert!(other.apply_for_test(
        1,
        QCommand::Enqueue {
            expires: 0,
            message: record(9, meter),
        }
    ));
    other.install_for_test(data);
    assert_eq!(bodies(&other), vec![(3, 1), (6, 3)]);
}
