//! A client connection reading its requests: the head (read and parsed as it arrives, each
//! byte scanned once), then the body into its exchange, decoded by the exchange's body tracker
//! (chunked or by length) within the body limit and the body-memory budget; once it is all here,
//! the socket is still watched for a hang-up. Methods of the `Client`: no lookups.

use std::time::Instant;

use crate::http::{parse_request_head, HeadError, RequestHead, MAX_HEAD_BYTES};
use crate::proxy::event::io::IoOutcome;
use crate::proxy::state::{AttemptPhase, Client, ClientPhase, CLIENT_OUT_HIGH};

/// What one read of a request head did.
pub enum HeadStep {
    /// Bytes moved (or not); no complete head yet.
    Moved(bool),
    /// Not a request qcc takes (400, 431, ...).
    Bad(HeadError),
    /// A whole head, taken out of the buffer.
    Head(RequestHead),
    /// The client went away.
    Gone,
}

/// What one read of a request body did.
pub enum BodyStep {
    /// Bytes moved (or not).
    Moved(bool),
    /// A bad body (status, message): answered, and the connection closes.
    Reject(u16, String),
    /// The client went away.
    Gone,
}

impl Client {
    /// Read and parse the next request head. A reply still queued over the per-connection bound:
    /// the client is not reading, so the next (pipelined) request is neither read nor parsed
    /// until it does. Pipelined requests are answered one at a time, and each connection holds at
    /// most one reply past the bound.
    pub(in crate::proxy) fn read_head(&mut self, scratch: &mut [u8], now: Instant) -> HeadStep {
        if self.out.len() >= CLIENT_OUT_HIGH {
            return HeadStep::Moved(false);
        }
        let mut progress = false;
        if self.can_read && self.inbuf.len() <= MAX_HEAD_BYTES {
            let was_empty = self.inbuf.is_empty();
            match crate::proxy::event::io::read_into(&mut self.sock, &mut self.inbuf, scratch) {
                IoOutcome::Progress(n) => {
                    progress = true;
                    if crate::proxy::event::io::drained(n, crate::proxy::event::io::READ_CHUNK, self.hup) {
                        self.can_read = false;
                    }
                    if was_empty {
                        self.since = now; // the header timeout runs from the head's first byte
                    }
                }
                IoOutcome::WouldBlock => self.can_read = false,
                IoOutcome::Closed | IoOutcome::Error(_) => return HeadStep::Gone,
            }
        }
        if self.inbuf.is_empty() {
            return HeadStep::Moved(progress);
        }
        match self.head_scan.parse(&self.inbuf, parse_request_head) {
            Ok(None) => HeadStep::Moved(progress),
            Err(e) => HeadStep::Bad(e),
            Ok(Some(head)) => {
                self.inbuf.drain(..head.raw.len());
                self.heads = self.heads.saturating_add(1);
                self.answering_head = head.method_bytes() == b"HEAD";
                HeadStep::Head(head)
            }
        }
    }

    /// Read the request body from the socket into the exchange, as far as it has arrived (at
    /// most `max_body` bytes). `may_grow`: the body-memory budget allows reading more body
    /// bytes (`budget.rs`); `idle`: how long the client may pause while the attempt waits on it.
    pub(in crate::proxy) fn read_body(
        &mut self,
        may_grow: bool,
        max_body: u64,
        idle: std::time::Duration,
        scratch: &mut [u8],
        now: Instant,
    ) -> BodyStep {
        let Client { inbuf, phase, can_read, sock, since, hup, .. } = self;
        let ClientPhase::Exchange(ex) = phase else {
            return BodyStep::Moved(false);
        };
        let mut progress = false;
        loop {
            if !inbuf.is_empty() && !ex.body_tracker.is_done() {
                match ex.body_tracker.advance_into(inbuf, &mut ex.body) {
                    Ok(n) => {
                        inbuf.drain(..n);
                    }
                    Err(e) => return BodyStep::Reject(400, format!("bad chunked request body: {e:?}")),
                }
                if ex.body.len() as u64 + ex.body_dropped > max_body {
                    return BodyStep::Reject(413, format!("request body is over the limit of {max_body} bytes"));
                }
            }
            if !*can_read || (!may_grow && !ex.body_tracker.is_done()) {
                return BodyStep::Moved(progress);
            }
            if progress && ex.body.len() >= crate::proxy::client::budget::SMALL_BODY {
                return BodyStep::Moved(true); // a large body: the budget is looked at between reads
            }
            if ex.body_tracker.is_done() {
                // The request is all here; keep watching the client so that a hang-up (Esc in
                // Claude Code) cancels the upstream attempt at once instead of letting a long
                // generation run for nobody. Pipelined bytes are kept for the next request, up
                // to a head's worth; past that the client waits (it is not read).
                if inbuf.len() >= crate::http::MAX_HEAD_BYTES {
                    return BodyStep::Moved(progress);
                }
                return match crate::proxy::event::io::read_into(sock, inbuf, scratch) {
                    IoOutcome::Progress(n) => {
                        if crate::proxy::event::io::drained(n, scratch.len(), *hup) {
                            *can_read = false;
                        }
                        BodyStep::Moved(true)
                    }
                    IoOutcome::WouldBlock => {
                        *can_read = false;
                        BodyStep::Moved(progress)
                    }
                    IoOutcome::Closed | IoOutcome::Error(_) => BodyStep::Gone,
                };
            }
            match crate::proxy::event::io::read_into(sock, inbuf, scratch) {
                IoOutcome::Progress(n) => {
                    progress = true;
                    *since = now;
                    if crate::proxy::event::io::drained(n, scratch.len(), *hup) {
                        *can_read = false;
                    }
                    if let Some(a) = ex.attempt.as_mut() {
                        if a.phase == AttemptPhase::Sending {
                            a.deadline = now + idle; // the client's pace, not the endpoint's
                        }
                    }
                }
                IoOutcome::WouldBlock => {
                    *can_read = false;
                    return BodyStep::Moved(progress);
                }
                IoOutcome::Closed | IoOutcome::Error(_) => return BodyStep::Gone,
            }
        }
    }
}
