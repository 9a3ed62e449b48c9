//! Socket I/O classified in one place: every read and write returns an [`IoOutcome`].

use std::io::{self, Read, Write};

/// Bytes read per socket read.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// What one non-blocking read or write did.
#[derive(Debug)]
pub enum IoOutcome {
    /// Moved this many bytes (never 0).
    Progress(usize),
    /// The socket has nothing more for now; wait for the next readiness event.
    WouldBlock,
    /// Orderly end of stream (read returned 0, or the peer closed cleanly).
    Closed,
    /// Reset, refused, broken pipe, TLS alert, ...
    Error(io::Error),
}

/// Classify an `io::Result` from a read or write. `Interrupted` is retried by the callers' loops,
/// so it is reported as progress-less WouldBlock only when it repeats (it does not, in practice).
pub fn classify(r: io::Result<usize>) -> IoOutcome {
    match r {
        Ok(0) => IoOutcome::Closed,
        Ok(n) => IoOutcome::Progress(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => IoOutcome::WouldBlock,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => IoOutcome::WouldBlock,
        Err(e) => IoOutcome::Error(e),
    }
}

/// Read once from `src` through the loop's `scratch` buffer, appending what was read to `dst`.
/// The scratch buffer is allocated once, so a read never zeroes fresh memory.
pub fn read_into(src: &mut impl Read, dst: &mut Vec<u8>, scratch: &mut [u8]) -> IoOutcome {
    let outcome = classify(src.read(scratch));
    if let IoOutcome::Progress(n) = outcome {
        dst.extend_from_slice(&scratch[..n]);
    }
    outcome
}

/// A plain TCP read that returned less than it asked for emptied the receive queue, so the
/// next read would only say WouldBlock: skip that syscall. Safe with edge-triggered epoll
/// because any later arrival is a new edge; an EOF that already arrived is signalled by the
/// event (`hup`), and then we keep reading until it shows (the same rule as nginx's).
pub fn drained(n: usize, asked: usize, hup: bool) -> bool {
    n < asked && !hup
}

/// Write once from `src`.
pub fn write_from(dst: &mut impl Write, src: &[u8]) -> IoOutcome {
    if src.is_empty() {
        return IoOutcome::WouldBlock;
    }
    classify(dst.write(src))
}

/// An outgoing byte queue with a read cursor, so partial writes never shift memory each time.
#[derive(Debug, Default)]
pub struct OutBuf {
    data: Vec<u8>,
    pos: usize,
    /// Bytes ever pushed (for the per-request byte counts).
    pushed: u64,
    /// Where the latest run of qcc's own replies lies in the stream of pushed bytes, `[from,
    /// to)`: what the bound on local replies (`LOCAL_REPLIES_MAX`) counts, never a relayed one.
    local: (u64, u64),
}

impl OutBuf {
    pub fn pending(&self) -> &[u8] {
        &self.data[self.pos..]
    }
    pub fn len(&self) -> usize {
        self.data.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.pos == self.data.len()
    }
    pub fn pushed(&self) -> u64 {
        self.pushed
    }
    pub fn push(&mut self, bytes: &[u8]) {
        self.push_with(|data| data.extend_from_slice(bytes));
    }
    /// Like `push`, for bytes `write` puts straight into the queue (no intermediate buffer).
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        if self.is_empty() {
            self.data.clear();
            self.pos = 0;
        }
        let before = self.data.len();
        write(&mut self.data);
        self.pushed += (self.data.len() - before) as u64;
    }
    /// `push` for a reply qcc made itself (`local_pending` counts it until it is written).
    pub fn push_local(&mut self, bytes: &[u8]) {
        let (start, written) = (self.pushed, self.written());
        self.push(bytes);
        if self.local.1 <= written {
            self.local.0 = start;
        }
        self.local.1 = self.pushed;
    }

    /// Bytes of qcc's own replies still waiting to be written.
    pub fn local_pending(&self) -> usize {
        self.local.1.saturating_sub(self.written().max(self.local.0)) as usize
    }

    fn written(&self) -> u64 {
        self.pushed - self.len() as u64
    }

    pub fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.data.len() {
            self.data.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 && self.pos * 2 > self.data.len() {
            // Reclaim the written front once it dominates, keeping the copy cost amortised.
            self.data.drain(..self.pos);
            self.pos = 0;
        }
    }
    /// Release the allocation when it grew large (a 10 MiB body must not pin 10 MiB forever).
    pub fn shrink_if_idle(&mut self) {
        if self.is_empty() && self.data.capacity() > 256 * 1024 {
            self.data = Vec::new();
            self.pos = 0;
        }
    }
}

/// Make the next close of `sock` send a reset (RST) instead of a FIN.
pub fn set_linger_zero(sock: &mio::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt on a descriptor we own, with a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_pending_counts_local_replies_only() {
        let mut o = OutBuf::default();
        o.push(&[0; 100]); // a relayed answer
        assert_eq!(o.local_pending(), 0);
        o.push_local(&[1; 40]);
        assert_eq!((o.len(), o.local_pending()), (140, 40));
        o.consume(120);
        assert_eq!(o.local_pending(), 20);
        o.push(&[0; 10]);
        o.push_local(&[1; 5]);
        assert_eq!(o.local_pending(), 35, "from the first unwritten local byte");
        o.consume(35);
        assert_eq!(o.local_pending(), 0);
    }

    #[test]
    fn outbuf_cursor() {
        let mut b = OutBuf::default();
        b.push(b"hello ");
        b.push(b"world");
        assert_eq!(b.pending(), b"hello world");
        b.consume(6);
        assert_eq!(b.pending(), b"world");
        b.consume(5);
        assert!(b.is_empty());
        b.push(b"x");
        assert_eq!(b.pending(), b"x");
    }

    #[test]
    fn read_into_appends_only_what_was_read() {
        let mut src: &[u8] = b"abc";
        let mut dst = b"12".to_vec();
        let mut scratch = [0u8; 16];
        assert!(matches!(read_into(&mut src, &mut dst, &mut scratch), IoOutcome::Progress(3)));
        assert_eq!(dst, b"12abc");
        assert!(matches!(read_into(&mut src, &mut dst, &mut scratch), IoOutcome::Closed));
        assert_eq!(dst, b"12abc");
    }
}
