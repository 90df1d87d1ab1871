//! AMQP exceptions as values. Every failure a client can cause becomes an
//! `AmqpError` carrying RabbitMQ's reply code and the scope it closes; the
//! connection task is the single place that turns one into Channel.Close or
//! Connection.Close.

use std::fmt;

/// Which scope an exception closes. RabbitMQ calls channel-scoped exceptions
/// "soft" and connection-scoped ones "hard"; the reply code decides which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Channel,
    Connection,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum ReplyCode {
    ConnectionForced = 320,
    AccessRefused = 403,
    NotFound = 404,
    ResourceLocked = 405,
    PreconditionFailed = 406,
    FrameError = 501,
    SyntaxError = 502,
    CommandInvalid = 503,
    ChannelError = 504,
    UnexpectedFrame = 505,
    ResourceError = 506,
    NotAllowed = 530,
    NotImplemented = 540,
    InternalError = 541,
}

impl ReplyCode {
    pub fn from_u16(code: u16) -> Option<ReplyCode> {
        use ReplyCode::*;
        [
            ConnectionForced,
            AccessRefused,
            NotFound,
            ResourceLocked,
            PreconditionFailed,
            FrameError,
            SyntaxError,
            CommandInvalid,
            ChannelError,
            UnexpectedFrame,
            ResourceError,
            NotAllowed,
            NotImplemented,
            InternalError,
        ]
        .into_iter()
        .find(|c| *c as u16 == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            ReplyCode::ConnectionForced => "CONNECTION_FORCED",
            ReplyCode::AccessRefused => "ACCESS_REFUSED",
            ReplyCode::NotFound => "NOT_FOUND",
            ReplyCode::ResourceLocked => "RESOURCE_LOCKED",
            ReplyCode::PreconditionFailed => "PRECONDITION_FAILED",
            ReplyCode::FrameError => "FRAME_ERROR",
            ReplyCode::SyntaxError => "SYNTAX_ERROR",
            ReplyCode::CommandInvalid => "COMMAND_INVALID",
            ReplyCode::ChannelError => "CHANNEL_ERROR",
            ReplyCode::UnexpectedFrame => "UNEXPECTED_FRAME",
            ReplyCode::ResourceError => "RESOURCE_ERROR",
            ReplyCode::NotAllowed => "NOT_ALLOWED",
            ReplyCode::NotImplemented => "NOT_IMPLEMENTED",
            ReplyCode::InternalError => "INTERNAL_ERROR",
        }
    }

    /// The spec's soft errors close the channel; everything else the connection.
    pub fn scope(self) -> Scope {
        match self {
            ReplyCode::AccessRefused
            | ReplyCode::NotFound
            | ReplyCode::ResourceLocked
            | ReplyCode::PreconditionFailed => Scope::Channel,
            _ => Scope::Connection,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmqpError {
    pub code: ReplyCode,
    pub text: String,
    /// The method that failed, as RabbitMQ reports it in the Close (0 when none).
    pub class_id: u16,
    pub method_id: u16,
    pub scope: Scope,
}

pub type AmqpResult<T> = Result<T, AmqpError>;

impl AmqpError {
    pub fn new(code: ReplyCode, text: impl Into<String>) -> Self {
        AmqpError {
            code,
            text: text.into(),
            class_id: 0,
            method_id: 0,
            scope: code.scope(),
        }
    }

    /// Attach the failing method, unless one is attached already.
    pub fn on_method(mut self, class_id: u16, method_id: u16) -> Self {
        if self.class_id == 0 {
            self.class_id = class_id;
            self.method_id = method_id;
        }
        self
    }

    /// Escalate to the connection (RabbitMQ does this for soft errors on
    /// channel 0 and for a few channel-level conditions).
    pub fn closing_connection(mut self) -> Self {
        self.scope = Scope::Connection;
        self
    }

    /// The reply text as RabbitMQ writes it: `CODE_NAME - detail`.
    pub fn reply_text(&self) -> String {
        let full = format!("{} - {}", self.code.name(), self.text);
        // reply-text is a shortstr: at most 255 bytes, cut on a char boundary.
        if full.len() <= 255 {
            return full;
        }
        let mut end = 255;
        while !full.is_char_boundary(end) {
            end -= 1;
        }
        full[..end].to_string()
    }

    pub fn connection_forced(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::ConnectionForced, text)
    }
    pub fn access_refused(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::AccessRefused, text)
    }
    pub fn not_found(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::NotFound, text)
    }
    pub fn resource_locked(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::ResourceLocked, text)
    }
    pub fn precondition_failed(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::PreconditionFailed, text)
    }
    pub fn frame_error(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::FrameError, text)
    }
    pub fn syntax_error(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::SyntaxError, text)
    }
    pub fn command_invalid(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::CommandInvalid, text)
    }
    pub fn channel_error(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::ChannelError, text)
    }
    pub fn unexpected_frame(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::UnexpectedFrame, text)
    }
    pub fn resource_error(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::ResourceError, text)
    }
    pub fn not_allowed(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::NotAllowed, text)
    }
    pub fn not_implemented(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::NotImplemented, text)
    }
    pub fn internal_error(text: impl Into<String>) -> Self {
        Self::new(ReplyCode::InternalError, text)
    }
}

impl fmt::Display for AmqpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code as u16, self.reply_text())
    }
}

impl std::error::Error for AmqpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_codes_close_the_channel_hard_codes_the_connection() {
        assert_eq!(AmqpError::not_found("x").scope, Scope::Channel);
        assert_eq!(AmqpError::precondition_failed("x").scope, Scope::Channel);
        assert_eq!(AmqpError::frame_error("x").scope, Scope::Connection);
        assert_eq!(AmqpError::not_allowed("x").scope, Scope::Connection);
    }

    #[test]
    fn reply_text_is_a_valid_shortstr() {
        let e = AmqpError::not_found("é".repeat(300));
        assert!(e.reply_text().len() <= 255);
        assert!(e.reply_text().starts_with("NOT_FOUND - "));
    }
}
