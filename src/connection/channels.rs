//! A connection's open channels, indexed by channel number (a frame finds
//! its channel with one bounds check, not a hash), and Channel.Open with
//! the limits on how many may be open.

use super::Connection;
use crate::channel::Channel;
use crate::error::AmqpError;
use amq_protocol::protocol::{AMQPClass, channel};

#[derive(Default)]
pub(super) struct ChannelTable {
    /// Slot n holds channel n. Boxed: a channel is large and the table grows.
    slots: Vec<Option<Box<Channel>>>,
    open: usize,
}

impl ChannelTable {
    pub(super) fn get_mut(&mut self, id: &u16) -> Option<&mut Channel> {
        self.slots.get_mut(*id as usize)?.as_deref_mut()
    }

    pub(super) fn insert(&mut self, id: u16, ch: Channel) {
        let i = id as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        if self.slots[i].replace(Box::new(ch)).is_none() {
            self.open += 1;
        }
    }

    pub(super) fn remove(&mut self, id: &u16) -> Option<Box<Channel>> {
        let ch = self.slots.get_mut(*id as usize)?.take()?;
        self.open -= 1;
        Some(ch)
    }

    pub(super) fn len(&self) -> usize {
        self.open
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u16, &Channel)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i as u16, c.as_deref()?)))
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Channel> {
        self.slots.iter().filter_map(|c| c.as_deref())
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Channel> {
        self.slots.iter_mut().filter_map(|c| c.as_deref_mut())
    }

    /// Every channel, taken out.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Box<Channel>> {
        self.open = 0;
        std::mem::take(&mut self.slots).into_iter().flatten()
    }
}

impl Connection {
    /// A channel is closed: no longer shown, its counts kept in the totals.
    pub(super) fn channel_gone(&self, id: u16) {
        if let Some(stats) = self.info.channel_closed(id) {
            self.broker.totals.channel_closed(&stats, &self.info.vhost);
        }
    }

    /// Channel.Open of a new channel. RabbitMQ limits how many channels are
    /// open (those closing count), not their numbers.
    pub(super) fn channel_open(&mut self, id: u16) -> Result<(), AmqpError> {
        let open = self.channels.len() + self.closing.len();
        if open >= self.channel_max as usize {
            return Err(AmqpError::not_allowed(format!(
                "number of channels opened ({open}) has reached the negotiated channel_max ({})",
                self.channel_max
            )));
        }
        self.check_user_channel_limit()?;
        let ch = Channel::new(id);
        self.info.channel_opened(ch.stats());
        crate::broker::totals::Totals::bump(&self.broker.totals.channels_opened);
        self.channels.insert(id, ch);
        self.out.method(
            id,
            AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})),
        );
        Ok(())
    }

    /// The user's `max-channels`, counted over all its connections.
    fn check_user_channel_limit(&self) -> Result<(), AmqpError> {
        let user = &self.grant.user;
        let Some(limit) = self
            .broker
            .access
            .snapshot()
            .users
            .get(user)
            .and_then(|u| u.limits.max_channels)
        else {
            return Ok(());
        };
        let elsewhere: u64 = self
            .broker
            .connections
            .list()
            .iter()
            .filter(|c| c.user == *user && c.id != self.id)
            .map(|c| c.stats.channels.load(std::sync::atomic::Ordering::Relaxed) as u64)
            .sum();
        if elsewhere + self.channels.len() as u64 >= limit {
            return Err(AmqpError::not_allowed(format!(
                "number of channels opened for user '{user}' has reached the maximum allowed user limit of ({limit})"
            )));
        }
        Ok(())
    }
}
