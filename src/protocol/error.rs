//! Protocol errors: the request stream is malformed, so the connection is closed after the
//! reply, exactly where Redis closes it (`setProtocolError` in networking.c).

use thiserror::Error;

/// A malformed request. The text is what Redis 7 sends after `-ERR `.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedDollar(char),
    #[error("Protocol error: too big mbulk count string")]
    TooBigMbulkCount,
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    #[error("Protocol error: too big inline request")]
    TooBigInline,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// Not a reply: Redis closes such a client silently (and logs it).
    #[error("closing client that reached max query buffer length")]
    QueryBufferLimit,
}

impl ProtocolError {
    /// Whether Redis sends an error reply before closing (all but the query-buffer limit).
    pub fn has_reply(&self) -> bool {
        !matches!(self, ProtocolError::QueryBufferLimit)
    }
}
