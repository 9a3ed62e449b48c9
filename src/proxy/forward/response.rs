//! Reading an upstream's response: the head decides (relay, hold a failed one for a retry,
//! or hold a 200 stream until its first content event), then the body goes to the client or
//! into the stash, read as it passes (`sse.rs`).

use std::time::Instant;

use crate::http::{BodyFraming, BodyTracker};
use crate::proxy::state::AttemptEvent;
use crate::proxy::state::*;
use crate::proxy::wire;

/// How an answer is read: the settings that decide, fixed for one pump.
pub(in crate::proxy) struct Reading<'a> {
    pub stream_idle: std::time::Duration,
    /// How long a 200 stream may be held before its first content (when a retry is possible).
    pub hold: Option<std::time::Duration>,
    /// The statuses that fail over.
    pub retry_on: &'a crate::store::cluster::RetryOn,
    /// A token count sent as it came (an endpoint of the Messages API): a 404 or 405 says the
    /// endpoint lacks the API, not that it failed.
    pub count_tokens: bool,
    /// A 400 is held, read for what it refused (`learn.rs`), before it goes to the client.
    pub learn: bool,
}

/// Interpret what the upstream has sent so far: the head once (its rate-limit headers go to the
/// endpoint's `headroom`), then body bytes, either relayed to the client or held in the stash.
/// `Some` when the attempt is decided.
pub(in crate::proxy) fn process_response(
    ex: &mut Exchange,
    up: &mut Upstream,
    out: &mut crate::proxy::event::io::OutBuf,
    now: Instant,
    rules: &Reading,
    headroom: &mut crate::policy::headroom::Headroom,
) -> Option<AttemptEvent> {
    let Reading { stream_idle, hold, retry_on, count_tokens, learn } = *rules;
    let a = ex.attempt.as_mut()?;
    while a.resp.is_none() {
        if up.inbuf.is_empty() {
            return None;
        }
        let was_head = ex.head.method_bytes() == b"HEAD";
        // (Interim responses are skipped, within a bound: we answered the client's own 100.)
        let head = match up.head.take(&mut up.inbuf, was_head) {
            Ok(None) => return None,
            Err(e) => return Some(AttemptEvent::Failed(Failure::BadResponse(e.to_string()))),
            Ok(Some(h)) => h,
        };
        headroom.update(head.headers(), now, std::time::SystemTime::now);
        if count_tokens && matches!(head.status, 404 | 405) {
            return Some(AttemptEvent::Failed(Failure::Lacks(head.status)));
        }
        a.head_elapsed = now.duration_since(a.started);
        a.resp_body = Some(BodyTracker::new(head.framing));
        let until_close = head.framing == BodyFraming::UntilClose;
        let messages = ex.api && head.status == 200 && ex.head.path_bytes() == b"/v1/messages";
        a.scan = if messages { crate::proxy::scan::Scan::for_reply(&head) } else { None };
        if messages && a.scan.is_none() {
            ex.usage_unread = true;
        }
        let stream = matches!(a.scan, Some(crate::proxy::scan::Scan::Sse(_)));
        let learnable = learn && head.status == 400 && head.framing != BodyFraming::UntilClose;
        if ex.api && (retry_on.contains(head.status) && ex.attempts < MAX_ATTEMPTS || learnable) {
            a.phase = AttemptPhase::Holding;
            let mut bytes = Vec::new();
            wire::client_response_head(
                &head,
                until_close || !ex.keep_alive,
                ex.cors.as_deref(),
                ex.served_by.as_deref(),
                &mut bytes,
            );
            ex.stash = Some((bytes, until_close));
        } else if let (true, Some(hold)) = (stream, hold) {
            // Held until the first content event; released as it was, then relayed as usual.
            a.phase = AttemptPhase::Priming;
            a.hold_until = Some(now + hold);
            let close = !ex.keep_alive || until_close || !ex.body_tracker.is_done();
            ex.keep_alive = !close;
            let mut bytes = Vec::with_capacity(head.raw.len() + 32);
            wire::client_response_head(&head, close, ex.cors.as_deref(), ex.served_by.as_deref(), &mut bytes);
            ex.stash = Some((bytes, until_close));
        } else {
            a.phase = AttemptPhase::Relaying;
            let close = !ex.keep_alive || until_close || !ex.body_tracker.is_done();
            ex.keep_alive = !close;
            out.push_with(|bytes| {
                wire::client_response_head(&head, close, ex.cors.as_deref(), ex.served_by.as_deref(), bytes)
            });
            ex.first_byte = Some(now);
        }
        a.deadline = hold_deadline(a, now + stream_idle);
        a.resp = Some(head);
    }
    let request_sent = a.request_sent(&ex.body, ex.body_tracker.is_done());
    let Attempt { resp_body, scan, .. } = a;
    let tracker = resp_body.as_mut()?;
    if up.inbuf.is_empty() {
        if tracker.is_done() {
            release_hold(ex, out, now, stream_idle);
            return ex.attempt.as_ref().map(|a| done_event(a, request_sent, up));
        }
        return None;
    }
    let n = match tracker.advance_observing(&up.inbuf, |data| {
        if let Some(s) = scan.as_mut() {
            s.feed(data);
        }
    }) {
        Ok(n) => n,
        Err(e) => {
            if matches!(a.phase, AttemptPhase::Holding | AttemptPhase::Priming) {
                ex.stash = None;
            }
            return Some(AttemptEvent::Failed(Failure::BadResponse(format!("bad chunked body: {e:?}"))));
        }
    };
    a.deadline = hold_deadline(a, now + stream_idle);
    match a.phase {
        AttemptPhase::Relaying => out.push(&up.inbuf[..n]),
        AttemptPhase::Priming => {
            // Never dropped: past the limit the hold ends below and all of it goes out.
            if let Some((stash, _)) = ex.stash.as_mut() {
                stash.extend_from_slice(&up.inbuf[..n]);
            }
        }
        _ => {
            if let Some((stash, _)) = ex.stash.as_mut() {
                if stash.len() + n > STASH_LIMIT {
                    ex.stash = None;
                } else {
                    stash.extend_from_slice(&up.inbuf[..n]);
                }
            }
        }
    }
    up.inbuf.drain(..n);
    if a.phase == AttemptPhase::Priming {
        if let Some(e) = a.scan.as_ref().and_then(|s| s.error()) {
            ex.stash = None; // nothing was released: retried as if the 200 had never come
            return Some(AttemptEvent::Failed(Failure::InStream(e)));
        }
        let content = matches!(&a.scan, Some(crate::proxy::scan::Scan::Sse(s)) if s.content_seen);
        let full = ex.stash.as_ref().is_none_or(|(held, _)| held.len() > STASH_LIMIT);
        if content || full || a.resp_body.as_ref().is_some_and(BodyTracker::is_done) {
            // First content, or the hold is full: the stream goes on as usual.
            release_hold(ex, out, now, stream_idle);
        }
    }
    let a = ex.attempt.as_mut()?;
    if a.resp_body.as_ref().is_some_and(BodyTracker::is_done) {
        return Some(done_event(a, request_sent, up));
    }
    if a.phase == AttemptPhase::Holding && ex.stash.is_none() {
        // Too big to keep: give up on this response now and retry.
        let status = a.resp.as_ref().map_or(502, |h| h.status);
        return Some(AttemptEvent::Failed(Failure::Status(status)));
    }
    None
}

/// While a stream is held, the deadline is the earlier of the stream-idle one and the hold's end.
fn hold_deadline(a: &Attempt, idle: Instant) -> Instant {
    match (a.phase, a.hold_until) {
        (AttemptPhase::Priming, Some(h)) => idle.min(h),
        _ => idle,
    }
}

/// A held stream goes out: what was held is queued for the client, and from now on the stream
/// is relayed as it comes (no retry is possible any more). The hold's end was the deadline while
/// it lasted: from here on only `--stream-idle-timeout` of silence may end the stream, counted
/// from `now` (the last byte, or the hold's end when nothing came).
pub(in crate::proxy) fn release_hold(
    ex: &mut Exchange,
    out: &mut crate::proxy::event::io::OutBuf,
    now: Instant,
    stream_idle: std::time::Duration,
) {
    let Some(a) = ex.attempt.as_mut() else { return };
    if a.phase != AttemptPhase::Priming {
        return;
    }
    a.phase = AttemptPhase::Relaying;
    a.hold_until = None;
    a.deadline = now + stream_idle;
    if let Some((bytes, _)) = ex.stash.take() {
        out.push(&bytes);
    }
    ex.first_byte = Some(now);
}

/// The response body is complete: a success to relay, or a held failure to retry.
/// The connection is reusable only if both messages ended cleanly on it.
pub(in crate::proxy) fn done_event(a: &Attempt, request_sent: bool, up: &Upstream) -> AttemptEvent {
    let status = a.resp.as_ref().map_or(502, |h| h.status);
    if a.phase == AttemptPhase::Holding {
        return AttemptEvent::Failed(Failure::Status(status));
    }
    let keep = a.resp.as_ref().is_some_and(|h| h.keep_alive);
    AttemptEvent::Complete { reuse: keep && up.inbuf.is_empty() && request_sent }
}

/// How long a pooled connection must have sat idle for a clean close before answering to be
/// taken for the idle-close race (the upstream's keep-alive timer firing as our request went
/// out). A connection used a moment ago that closes cleanly on the next request may have been
/// closed by that request: it is never sent there again.
pub(in crate::proxy) const RESTED: std::time::Duration = std::time::Duration::from_secs(1);

/// A pooled connection that failed before a byte of the request was written to it was closed
/// by the upstream while idle: one retry on a fresh connection to the same endpoint, blaming
/// no one. So that a request never meets a connection already known to be closed, the loop
/// handles idle connections' events before anything else in a batch (their EOF closes them),
/// `release_upstream` never pools one whose EOF or data is pending, and `take_pooled` peeks at
/// one idle for a while.
pub(in crate::proxy) fn is_stale(ex: &Exchange, up: &Upstream) -> bool {
    unanswered_on_reused(ex, up).is_some_and(|a| a.head_sent == 0)
}

/// The same race caught after the request went out, as a clean EOF before any response byte:
/// taken for the race (the one retry on a fresh connection) only on a connection that had
/// rested in the pool for `RESTED` or more, or when a reset is pending behind the EOF
/// (`SO_ERROR`: EPIPE or ECONNRESET; Linux reports the FIN first), which proves the upstream's
/// application closed with our request unread.
pub(in crate::proxy) fn is_stale_eof(ex: &Exchange, up: &mut Upstream) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
    unanswered_on_reused(ex, up).is_some()
        && (up.rested >= RESTED
            || matches!(up.transport.socket().take_error(), Ok(Some(e)) if matches!(e.kind(), ConnectionReset | BrokenPipe)))
}

/// The same race seen as a reset (or a broken pipe) before any byte of a response: the
/// upstream's application closed with our request unread, so it never acted on it. The same
/// one retry on a fresh connection (browsers resend on a reused connection for the same
/// reason), whether the connection rested or not: the reset is the proof.
pub(in crate::proxy) fn is_stale_reset(ex: &Exchange, up: &Upstream, e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
    matches!(e.kind(), ConnectionReset | BrokenPipe) && unanswered_on_reused(ex, up).is_some()
}

/// The attempt, when it runs on a reused connection that has not answered yet, has not used
/// its one fresh-connection retry, and its request can be sent again.
fn unanswered_on_reused<'a>(ex: &'a Exchange, up: &Upstream) -> Option<&'a Attempt> {
    ex.attempt.as_ref().filter(|a| ex.retry_copy && up.reused && !a.fresh_retry_used && a.resp.is_none())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// What `is_stale_eof` relies on: a request written to a connection whose peer has closed is
    /// answered with a reset, and a read then returns the peer's FIN (EOF) first while the reset
    /// waits in `SO_ERROR` (Linux; elsewhere the check finds nothing and the EOF stays a failure).
    #[test]
    fn a_reset_behind_a_fin_waits_in_so_error() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        drop(l.accept().unwrap().0);
        std::thread::sleep(Duration::from_millis(50));
        c.write_all(b"POST /v1/messages HTTP/1.1\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(c.read(&mut [0u8; 64]).unwrap(), 0, "the FIN is read first");
        let e = c.take_error().unwrap().expect("a pending error");
        assert!(matches!(e.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset), "{e}");
    }
}
