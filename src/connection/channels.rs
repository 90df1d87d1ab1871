//! A connection's open channels, indexed by channel number: a frame finds
//! its channel with one bounds check, not a hash.

use crate::channel::Channel;

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
