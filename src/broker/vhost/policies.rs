//! A vhost's policies: setting and removing them, and recomputing the
//! effective arguments of its queues when they change.

use super::*;
use std::sync::RwLock;

impl Vhost {
    /// Add or replace a policy (by name). It applies at once, as in
    /// RabbitMQ: to existing queues (their limits at once, TTLs for
    /// messages published from then on), to queues declared later, and to
    /// alternate-exchange lookups. It is saved with the vhost's definitions
    /// first; true if it replaced one of the same name.
    pub fn set_policy(&self, p: Policy) -> AmqpResult<bool> {
        self.put_policy_in(&self.policies, p)
    }

    /// Remove a policy; true if there was one of that name.
    pub fn delete_policy(&self, name: &str) -> AmqpResult<bool> {
        self.remove_policy_in(&self.policies, name)
    }

    /// Add or replace an operator policy: like `set_policy`, but its limits
    /// cap a queue's even where the queue or its policy sets them higher.
    pub fn set_operator_policy(&self, p: Policy) -> AmqpResult<bool> {
        self.put_policy_in(&self.operator_policies, p)
    }

    pub fn delete_operator_policy(&self, name: &str) -> AmqpResult<bool> {
        self.remove_policy_in(&self.operator_policies, name)
    }

    fn put_policy_in(&self, list: &RwLock<Vec<Policy>>, p: Policy) -> AmqpResult<bool> {
        let replaced = {
            let mut ps = list.write().unwrap_or_else(|e| e.into_inner());
            let before = ps.len();
            ps.retain(|x| x.name != p.name);
            let replaced = ps.len() != before;
            ps.push(p);
            replaced
        };
        self.persist_if(true)?;
        self.reapply_policies();
        Ok(replaced)
    }

    fn remove_policy_in(&self, list: &RwLock<Vec<Policy>>, name: &str) -> AmqpResult<bool> {
        let removed = {
            let mut ps = list.write().unwrap_or_else(|e| e.into_inner());
            let before = ps.len();
            ps.retain(|x| x.name != name);
            ps.len() != before
        };
        if removed {
            self.persist_if(true)?;
            self.reapply_policies();
        }
        Ok(removed)
    }

    /// The policy that applies to queue `name`, if any.
    pub(crate) fn policy_for_queue(&self, name: &str) -> Option<Policy> {
        policy::queue_policy(&self.policies(), name)
    }

    pub(crate) fn policy_for_exchange(&self, name: &str) -> Option<Policy> {
        policy::exchange_policy(&self.policies(), name)
    }

    /// The operator policy that applies to queue `name`, if any.
    pub(crate) fn operator_policy_for_queue(&self, name: &str) -> Option<Policy> {
        policy::queue_policy(&self.operator_policies(), name)
    }

    /// The policies, for listing.
    pub fn list_policies(&self) -> Vec<Policy> {
        self.policies()
    }

    pub fn list_operator_policies(&self) -> Vec<Policy> {
        self.operator_policies()
    }

    /// A queue's arguments with the policies' applied.
    pub(crate) fn effective_arguments(&self, name: &str, own: &FieldTable) -> FieldTable {
        let ps = self.policies.read().unwrap_or_else(|e| e.into_inner());
        let ops = self
            .operator_policies
            .read()
            .unwrap_or_else(|e| e.into_inner());
        policy::queue_arguments(&ps, &ops, name, own)
    }

    /// Recompute every queue's effective arguments from its own and the
    /// policies'. A policy value a queue cannot take is reported, and the
    /// queue keeps what it had.
    fn reapply_policies(&self) {
        let (policies, operator) = (self.policies(), self.operator_policies());
        let queues: Vec<Arc<Queue>> = self.queues.iter().map(|q| q.clone()).collect();
        for q in queues {
            let effective =
                policy::queue_arguments(&policies, &operator, q.name.as_str(), &q.arguments);
            match QueueArgs::parse(&effective, q.name.as_str(), &self.name) {
                Ok(args) if args != *q.args() => {
                    let dead = q.set_args(args);
                    self.dead_letter(&q, dead);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("policy not applied to queue '{}': {e}", q.name),
            }
        }
    }

    pub(super) fn policies(&self) -> Vec<Policy> {
        self.policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn operator_policies(&self) -> Vec<Policy> {
        self.operator_policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
