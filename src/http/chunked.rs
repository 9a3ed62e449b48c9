//! A resumable chunked-transfer-coding decoder that only finds the end of the body.

/// Why a chunked body is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    BadSize,
    SizeOverflow,
    BadLineEnd,
    TrailerTooLarge,
}

/// Stepped byte by byte; `Copy` state, checked arithmetic, resumable at any split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedDecoder {
    // private state
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        todo!()
    }
    /// Feed bytes; returns how many were consumed. When the final chunk and
    /// trailers are complete, `is_done()` turns true and no more bytes are consumed.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, ChunkedError> {
        let _ = input;
        todo!()
    }
    pub fn is_done(&self) -> bool {
        todo!()
    }
}
