//! What a cluster's nodes apply must leave them alike, whatever order the
//! log puts concurrent changes in.

use super::Broker;
use super::changes::Change;
use super::vhost::{Conn, QueueDecl};
use std::sync::Arc;

fn node(name: &str, dir: &std::path::Path) -> Arc<Broker> {
    let config = crate::Config {
        data_dir: dir.to_path_buf(),
        cluster: Some(crate::config::ClusterConfig {
            node_name: name.into(),
            replicate_topology: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    Broker::new(config).expect("broker")
}

fn exclusive(incarnation: u64, conn: u64, replaces: Option<u64>) -> Change {
    Change::DeclareQueue {
        vhost: "/".into(),
        queue: QueueDecl {
            name: "replies".into(),
            durable: false,
            exclusive: true,
            auto_delete: false,
            arguments: Default::default(),
            home: "n1".into(),
            incarnation,
            conn: Some(Conn {
                node: "n1".into(),
                id: conn,
            }),
            replaces,
            replicas: Vec::new(),
        },
    }
}

/// A client's connection closes and its next one declares its exclusive
/// queue again at once: the old queue's deletion and the new declare may
/// reach the log in either order.
#[tokio::test]
async fn a_queue_declared_again_ends_alike_whichever_the_log_orders_first() {
    for delete_first in [true, false] {
        let (d1, d2) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let (home, other) = (node("n1", d1.path()), node("n2", d2.path()));
        for b in [&home, &other] {
            b.apply_change(&exclusive(1, 7, None)).expect("declared");
        }
        // Its owner gone, the home is done with it: gone there at once.
        let v = home.vhost("/").expect("vhost");
        v.queue_lost(&v.queue("replies").expect("queue"));
        assert!(v.queue("replies").is_err());
        let replaces = v.replaced("replies");
        assert_eq!(replaces, Some(1));
        let delete = Change::DeleteQueue {
            vhost: "/".into(),
            name: "replies".into(),
            incarnation: 1,
        };
        let declare = exclusive(2, 8, replaces);
        let order = match delete_first {
            true => [delete, declare],
            false => [declare, delete],
        };
        for b in [&home, &other] {
            for c in &order {
                let answer = b.apply_change(c);
                assert!(
                    answer.is_ok(),
                    "{} (delete first: {delete_first}): {answer:?}",
                    b.node_name()
                );
            }
            let q = b.vhost("/").and_then(|v| v.queue("replies").ok());
            assert_eq!(
                q.map(|q| q.incarnation()),
                Some(2),
                "{} (delete first: {delete_first})",
                b.node_name()
            );
        }
    }
}
