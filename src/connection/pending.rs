//! A connection suspended on a method the cluster decides
//! (`channel::pending`): it reads and processes nothing more until the
//! outcome is in, so that the client's methods keep their order.

use super::*;
use crate::channel::pending::{Outcome, Wait};

/// The outcome of the waited-for change, or never when nothing waits.
pub(super) async fn outcome(wait: &mut Option<Wait>) -> Outcome {
    match wait {
        Some(w) => w.await,
        None => std::future::pending().await,
    }
}

impl Connection {
    /// The wait of a method that has just been suspended, for the
    /// connection's loop to poll.
    pub(super) fn take_wait(&mut self) -> Option<Wait> {
        self.pending.as_mut().and_then(|p| p.wait.take())
    }

    /// Finish the suspended method with its outcome. A channel closed
    /// meanwhile (or a connection closing) has nothing left to finish.
    pub(super) fn resume(&mut self, out: Outcome) {
        let Some(p) = self.pending.take() else {
            return;
        };
        if self.state != State::Open {
            return;
        }
        let id = p.channel;
        let Some(ch) = self.channels.get_mut(&id) else {
            return;
        };
        let mut ctx = ctx!(self);
        let r = p.finish(ch, &mut ctx, out).map(|()| After::Open);
        if let Err(e) = self.settle(id, r) {
            self.fail(e);
        }
    }
}
