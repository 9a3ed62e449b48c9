//! Body framing, decided once from a head, and the tracker that finds where a body ends.
//!
//! The request-smuggling guards live here, in one function.

use super::chunked::{ChunkedDecoder, ChunkedError};

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
    /// Response only: the body runs until the upstream closes.
    UntilClose,
}

/// Walks a body as its bytes arrive, without copying them, and says where it ends.
/// Bytes are relayed verbatim by the caller; this only counts.
#[derive(Debug, Clone)]
pub enum BodyTracker {
    Done,
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
    UntilClose,
}

impl BodyTracker {
    pub fn new(framing: BodyFraming) -> BodyTracker {
        let _ = framing;
        todo!()
    }
    /// Consume body bytes from `input`; returns how many belong to this body
    /// (the rest belong to whatever follows on the connection).
    pub fn advance(&mut self, input: &[u8]) -> Result<usize, ChunkedError> {
        let _ = input;
        todo!()
    }
    pub fn is_done(&self) -> bool {
        matches!(self, BodyTracker::Done)
    }
}
