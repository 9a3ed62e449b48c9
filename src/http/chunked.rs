//! A resumable chunked-transfer-coding decoder. It finds the end of the body (responses are
//! relayed verbatim) and, for request bodies, hands out the chunk data so that qcc can write
//! canonical chunks upstream (`feed_data`). One state per byte of framing, data in bulk.

/// Why a chunked body is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    BadSize,
    SizeOverflow,
    BadLineEnd,
    TrailerTooLarge,
}

/// Longest chunk extension we skip, and the most trailer bytes we accept.
const MAX_EXT: u32 = 4096;
const MAX_TRAILERS: u32 = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// First hex digit of a size line.
    SizeStart,
    /// More hex digits, or the end of the size.
    Size,
    /// Whitespace after the size (tolerated before `;` or CR).
    SizeWs,
    /// Inside `;ext`, up to CR.
    Ext,
    /// Expect LF ending the size line.
    SizeLf,
    /// `remaining` data bytes to skip.
    Data,
    DataCr,
    DataLf,
    /// After the last chunk: start of a trailer line (or the final CRLF).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    TrailerLf,
    FinalLf,
    Done,
}

/// Stepped byte by byte; `Copy` state, checked arithmetic, resumable at any split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    remaining: u64,
    /// Bytes of the current extension, or of all trailers so far.
    counted: u32,
    /// Largest chunk size accepted (a request's body limit); larger is `SizeOverflow`.
    limit: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder { state: State::SizeStart, size: 0, remaining: 0, counted: 0, limit: u64::MAX }
    }

    /// A decoder refusing any chunk larger than `limit` as soon as its size line shows it.
    pub fn with_limit(limit: u64) -> Self {
        ChunkedDecoder { limit, ..ChunkedDecoder::new() }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feed bytes; returns how many were consumed. Once the final chunk and trailers are
    /// complete, `is_done()` turns true and nothing more is consumed.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, ChunkedError> {
        self.feed_data(input, |_| {})
    }

    /// `feed`, handing each run of chunk data to `data` as it is passed.
    pub fn feed_data(&mut self, input: &[u8], mut data: impl FnMut(&[u8])) -> Result<usize, ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Done {
                break;
            }
            if self.state == State::Data {
                let take = (input.len() - i).min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                data(&input[i..i + take]);
                i += take;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            self.step(input[i])?;
            i += 1;
        }
        Ok(i)
    }

    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        use State::*;
        self.state = match self.state {
            SizeStart => {
                self.size = u64::from(hex(b).ok_or(ChunkedError::BadSize)?);
                if self.size > self.limit {
                    return Err(ChunkedError::SizeOverflow);
                }
                Size
            }
            Size => match b {
                b'\r' => SizeLf,
                b'\n' => return Err(ChunkedError::BadLineEnd),
                b';' => {
                    self.counted = 0;
                    Ext
                }
                b' ' | b'\t' => SizeWs,
                _ => {
                    let d = hex(b).ok_or(ChunkedError::BadSize)?;
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(d)))
                        .filter(|&s| s <= self.limit)
                        .ok_or(ChunkedError::SizeOverflow)?;
                    Size
                }
            },
            SizeWs => match b {
                b' ' | b'\t' => SizeWs,
                b';' => {
                    self.counted = 0;
                    Ext
                }
                b'\r' => SizeLf,
                _ => return Err(ChunkedError::BadSize),
            },
            Ext => match b {
                b'\r' => SizeLf,
                b'\n' | 0 => return Err(ChunkedError::BadLineEnd),
                _ => {
                    self.counted += 1;
                    if self.counted > MAX_EXT {
                        return Err(ChunkedError::BadSize);
                    }
                    Ext
                }
            },
            SizeLf => {
                if b != b'\n' {
                    return Err(ChunkedError::BadLineEnd);
                }
                if self.size == 0 {
                    self.counted = 0;
                    TrailerStart
                } else {
                    self.remaining = self.size;
                    Data
                }
            }
            Data => unreachable_data(),
            DataCr => {
                if b != b'\r' {
                    return Err(ChunkedError::BadLineEnd);
                }
                DataLf
            }
            DataLf => {
                if b != b'\n' {
                    return Err(ChunkedError::BadLineEnd);
                }
                SizeStart
            }
            TrailerStart => match b {
                b'\r' => FinalLf,
                b'\n' => return Err(ChunkedError::BadLineEnd),
                _ => {
                    self.count_trailer()?;
                    Trailer
                }
            },
            Trailer => match b {
                b'\r' => TrailerLf,
                b'\n' | 0 => return Err(ChunkedError::BadLineEnd),
                _ => {
                    self.count_trailer()?;
                    Trailer
                }
            },
            TrailerLf => {
                if b != b'\n' {
                    return Err(ChunkedError::BadLineEnd);
                }
                TrailerStart
            }
            FinalLf => {
                if b != b'\n' {
                    return Err(ChunkedError::BadLineEnd);
                }
                Done
            }
            Done => Done,
        };
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), ChunkedError> {
        self.counted += 1;
        if self.counted > MAX_TRAILERS {
            return Err(ChunkedError::TrailerTooLarge);
        }
        Ok(())
    }
}

/// `feed` handles `Data` in bulk before calling `step`; keep `step` total anyway.
fn unreachable_data() -> State {
    State::Data
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed whole, in two pieces at every split, and byte by byte: same consumed count.
    fn all_splits(input: &[u8]) -> Result<(usize, bool), ChunkedError> {
        let mut whole = ChunkedDecoder::new();
        let expect = whole.feed(input).map(|n| (n, whole.is_done()));
        for split in 0..=input.len() {
            let mut d = ChunkedDecoder::new();
            let r = d.feed(&input[..split]).and_then(|a| {
                if a < split {
                    return Ok((a, d.is_done()));
                }
                d.feed(&input[split..]).map(|b| (a + b, d.is_done()))
            });
            assert_eq!(r, expect, "split at {split}");
        }
        let mut d = ChunkedDecoder::new();
        let mut total = 0;
        let mut err = None;
        for &b in input {
            match d.feed(&[b]) {
                Ok(n) => total += n,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        match err {
            Some(e) => assert_eq!(expect, Err(e)),
            None => assert_eq!(expect, Ok((total, d.is_done()))),
        }
        expect
    }

    #[test]
    fn simple_body_then_next_request() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
        let mut input = body.to_vec();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(all_splits(&input), Ok((body.len(), true)));
    }

    #[test]
    fn trailers() {
        let body = b"3\r\nabc\r\n0\r\nx-trailer: 1\r\ny: 2\r\n\r\n";
        assert_eq!(all_splits(body), Ok((body.len(), true)));
    }

    #[test]
    fn incomplete_is_not_done() {
        assert_eq!(all_splits(b"5\r\nhel"), Ok((6, false)));
        assert_eq!(all_splits(b"0\r\n"), Ok((3, false)));
    }

    #[test]
    fn errors() {
        assert_eq!(all_splits(b"zz\r\n").map(|_| ()), Err(ChunkedError::BadSize));
        assert_eq!(all_splits(b"\r\n").map(|_| ()), Err(ChunkedError::BadSize));
        assert_eq!(all_splits(b"fffffffffffffffff\r\n").map(|_| ()), Err(ChunkedError::SizeOverflow));
        assert_eq!(all_splits(b"3\nabc").map(|_| ()), Err(ChunkedError::BadLineEnd));
        assert_eq!(all_splits(b"3\r\nabcX\r\n").map(|_| ()), Err(ChunkedError::BadLineEnd));
        let mut big = b"0\r\n".to_vec();
        for _ in 0..1000 {
            big.extend_from_slice(b"x-pad: 0123456789\r\n");
        }
        assert_eq!(all_splits(&big).map(|_| ()), Err(ChunkedError::TrailerTooLarge));
    }

    #[test]
    fn big_chunk_sizes_are_exact() {
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.feed(b"10000\r\n"), Ok(7));
        let data = vec![b'a'; 0x10000];
        assert_eq!(d.feed(&data), Ok(0x10000));
        assert_eq!(d.feed(b"\r\n0\r\n\r\nextra"), Ok(7));
        assert!(d.is_done());
    }
}
