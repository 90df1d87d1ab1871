//! A frame on an open channel, to the channel: its method, content header
//! or body handled, and what that left (the channel closed by the client,
//! or by an error) settled.

use super::*;

// Moved once, straight into its handler; boxing the header would cost an
// allocation per published message.
#[allow(clippy::large_enum_variant)]
pub(super) enum ChannelFrame {
    Method(AMQPClass),
    Header(codec::ContentHeader),
    Body(bytes::Bytes),
}

impl Connection {
    pub(super) fn channel_frame(&mut self, id: u16, f: ChannelFrame) -> Result<(), AmqpError> {
        if self.closing.contains(&id) {
            if let ChannelFrame::Method(AMQPClass::Channel(m)) = f {
                match m {
                    channel::AMQPMethod::CloseOk(_) => {
                        self.closing.retain(|c| *c != id);
                    }
                    channel::AMQPMethod::Close(_) => {
                        self.out.method(
                            id,
                            AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                        );
                    }
                    _ => {}
                }
            }
            return Ok(());
        }
        let Some(ch) = self.channels.get_mut(&id) else {
            return match f {
                ChannelFrame::Method(AMQPClass::Channel(channel::AMQPMethod::Open(_))) => {
                    self.channel_open(id)
                }
                ChannelFrame::Method(m) => Err(AmqpError::channel_error("expected 'channel.open'")
                    .on_method(m.get_amqp_class_id(), m.get_amqp_method_id())),
                _ => Err(AmqpError::channel_error("expected 'channel.open'")),
            };
        };
        let mut ctx = ctx!(self);
        let r = match f {
            ChannelFrame::Method(m) => ch.handle_method(&mut ctx, m),
            ChannelFrame::Header(h) => ch.handle_header(&mut ctx, h).map(|_| After::Open),
            ChannelFrame::Body(b) => ch.handle_body(&mut ctx, b).map(|_| After::Open),
        };
        // A publish completed by its last frame waits on other nodes.
        if let Some(p) = self.pending.as_mut().filter(|p| p.channel == 0) {
            (p.channel, p.class_id, p.method_id) = (id, 60, 40);
        }
        self.settle(id, r)
    }

    /// What a channel's method left: the channel closed by the client, or
    /// by an error; a connection-scoped error is the caller's to raise.
    pub(super) fn settle(&mut self, id: u16, r: AmqpResult<After>) -> Result<(), AmqpError> {
        match r {
            Ok(After::Open) => Ok(()),
            Ok(After::Closed) => {
                self.channels.remove(&id);
                self.channel_gone(id);
                Ok(())
            }
            Err(e) if e.scope == Scope::Channel => {
                self.close_channel(id, e);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
