//! The exchange's side of an attempt, once it has a connection: the request head and body
//! written as the connection takes them, the answer read while the client takes it
//! (backpressure), passed through `translation.rs` for an OpenAI-format endpoint, and judged by
//! `forward/response.rs`. A method of the `Exchange`, given its client's output, its connection
//! and the shared state: no lookups, no other connection.

use std::time::Instant;

use crate::http::BodyTracker;
use crate::proxy::event::io::{IoOutcome, OutBuf};
use crate::proxy::event::transport::Transport;
use crate::proxy::forward::response::{is_stale, is_stale_eof, is_stale_reset, process_response};
use crate::proxy::scan::translation;
use crate::proxy::shared::Shared;
use crate::proxy::state::*;

/// Upstream reads per pump of an attempt (of up to `READ_CHUNK` each).
const READS_PER_PUMP: usize = 4;

impl Exchange {
    /// Move bytes between this exchange and its attempt's upstream connection `up`: the request
    /// head and body out, the answer in (read only while `out`, the client's, takes it), and
    /// what happened. The exchange's side of an attempt: the shared state it needs is `sh`.
    pub(in crate::proxy) fn pump_upstream(
        &mut self,
        out: &mut OutBuf,
        up: &mut Upstream,
        sh: &mut Shared,
        scratch: &mut [u8],
        now: Instant,
    ) -> AttemptEvent {
        let ex = self;
        let (stream_idle, stream_hold) = (sh.settings.stream_idle_timeout, sh.settings.stream_hold);
        let (endpoints, clusters) = (&mut sh.endpoints, &sh.clusters);
        // A 200 stream is held before its first content only when a retry elsewhere is possible
        // (looked at only until the response head is here: not for every chunk of a body).
        let hold = {
            let Some(a) = ex.attempt.as_ref() else {
                return AttemptEvent::Nothing;
            };
            (!stream_hold.is_zero()
                && a.resp.is_none()
                && ex.retry_copy
                && ex.attempts < MAX_ATTEMPTS
                && crate::proxy::clusters::another_may_serve(
                    ex,
                    Some(a.endpoint),
                    endpoints,
                    clusters,
                    &sh.failures,
                    now,
                ))
            .then_some(stream_hold)
        };
        let Some(a) = ex.attempt.as_mut() else {
            return AttemptEvent::Nothing;
        };
        let timeout = timeout_of(&endpoints[a.endpoint].cfg);
        let a_endpoint = a.endpoint;
        let retry_on = clusters[endpoints[a_endpoint].cluster].cfg.retry_on;
        let count_tokens = ex.api
            && ex.head.path_bytes() == crate::translate::COUNT_TOKENS
            && !crate::translate::rewrites(&endpoints[a_endpoint].cfg.format);
        // A 400 from an endpoint of the Messages API is held when it may teach a request rule.
        let learn = sh.settings.learn
            && ex.api
            && ex.learned < crate::proxy::forward::learn::MAX_LEARNED
            && ex.body_tracker.is_done()
            && ex.retry_copy
            && !crate::translate::rewrites(&endpoints[a_endpoint].cfg.format);
        let rules =
            crate::proxy::forward::response::Reading { stream_idle, hold, retry_on: &retry_on, count_tokens, learn };
        let mut progress = false;

        if a.phase == AttemptPhase::Connecting {
            if !up.can_write {
                return AttemptEvent::Nothing;
            }
            match crate::proxy::upstream::one_shot::connect_done(up) {
                Ok(true) => {
                    a.phase = AttemptPhase::Sending;
                    a.deadline = now + timeout;
                    progress = true;
                }
                Ok(false) => return AttemptEvent::Nothing,
                Err(e) => return AttemptEvent::Failed(Failure::Connect(e)),
            }
        }

        // Request: head, then the body as far as it has arrived.
        let mut write_failed = false;
        while up.can_write && a.phase != AttemptPhase::Holding {
            let data: &[u8] = if a.head_sent < a.head_out.len() {
                &a.head_out[a.head_sent..]
            } else if a.body_sent < a.body_len(&ex.body) {
                a.body_piece(&ex.body, a.body_sent)
            } else {
                break;
            };
            match up.transport.write(data) {
                IoOutcome::Progress(n) => {
                    if a.head_sent < a.head_out.len() {
                        a.head_sent += n;
                    } else {
                        a.body_sent += n;
                    }
                    progress = true;
                    if a.phase == AttemptPhase::Sending && a.request_sent(&ex.body, ex.body_tracker.is_done()) {
                        a.deadline = now + timeout; // the response-head clock starts now
                    }
                }
                IoOutcome::WouldBlock => up.can_write = false,
                IoOutcome::Closed | IoOutcome::Error(_) => {
                    // The upstream may have answered already (an early 413, say): read first.
                    write_failed = true;
                    break;
                }
            }
        }
        ex.drop_sent_body(); // only without a retry copy (the memory budget gave it up)
        if up.can_write && up.transport.wants_write() {
            match up.transport.flush() {
                IoOutcome::Progress(_) => progress = true,
                IoOutcome::WouldBlock => up.can_write = false,
                IoOutcome::Closed | IoOutcome::Error(_) => write_failed = true,
            }
        }
        let relaying_blocked = |ex: &Exchange, out: &crate::proxy::event::io::OutBuf| {
            ex.attempt.as_ref().is_some_and(|a| a.phase == AttemptPhase::Relaying) && out.len() >= CLIENT_OUT_HIGH
        };

        // Response: read while the client can take it (backpressure: its pace sets ours), and
        // at most READS_PER_PUMP times: a peer that never stops sending gets its fair share of
        // this wakeup (`drive` pumps again, then defers to the next turn), not all of it.
        let mut eof = false;
        let mut reads = 0;
        while up.can_read && !relaying_blocked(ex, out) && reads < READS_PER_PUMP {
            reads += 1;
            let translation = ex.attempt.as_mut().and_then(|a| a.translation.as_deref_mut());
            let tap = ex.body_log.as_deref_mut().map(|l| l as &mut dyn translation::Tap);
            match translation::read(translation, &mut up.transport, &mut up.inbuf, scratch, tap) {
                IoOutcome::Progress(n) => {
                    progress = true;
                    let plain = matches!(up.transport, Transport::Plain(_));
                    if plain && crate::proxy::event::io::drained(n, scratch.len(), up.hup) {
                        up.can_read = false;
                    }
                }
                IoOutcome::WouldBlock => up.can_read = false,
                IoOutcome::Closed => {
                    eof = true;
                    up.can_read = false;
                }
                IoOutcome::Error(e) => {
                    let got_head = ex.attempt.as_ref().is_some_and(|a| a.resp.is_some());
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        return AttemptEvent::Failed(Failure::Tls(e.to_string()));
                    }
                    if !got_head && up.inbuf.is_empty() && (is_stale(ex, up) || is_stale_reset(ex, up, &e)) {
                        return AttemptEvent::Stale;
                    }
                    if ex
                        .attempt
                        .as_ref()
                        .is_some_and(|a| matches!(a.phase, AttemptPhase::Holding | AttemptPhase::Priming))
                    {
                        ex.stash = None;
                    }
                    return AttemptEvent::Failed(Failure::Closed(if got_head {
                        "reset mid-body"
                    } else {
                        "reset before response head"
                    }));
                }
            }
            if let Some(ev) = process_response(ex, up, out, now, &rules, &mut endpoints[a_endpoint].headroom) {
                return ev;
            }
            if up.transport.wants_write() && up.can_write {
                let _ = up.transport.flush();
            }
        }
        if let Some(ev) = process_response(ex, up, out, now, &rules, &mut endpoints[a_endpoint].headroom) {
            return ev;
        }
        // A translated answer the upstream cut or garbled: the client has been told in the
        // stream (an `error` event) when it was relaying; held, it is retried as any failure.
        if let Some(why) = ex.attempt.as_ref().and_then(|a| a.translation.as_ref()).and_then(|t| t.failure()) {
            let why = why.to_string();
            if ex.attempt.as_ref().is_some_and(|a| matches!(a.phase, AttemptPhase::Holding | AttemptPhase::Priming)) {
                ex.stash = None;
            }
            return AttemptEvent::Failed(Failure::BadResponse(why));
        }
        if !up.can_write && up.transport.may_write_again() {
            up.can_write = true; // the TLS handshake finished: the request waits in rustls
            progress = true;
        }
        let stale = is_stale(ex, up) || ((eof || write_failed) && up.inbuf.is_empty() && is_stale_eof(ex, up));
        let Some(a) = ex.attempt.as_mut() else {
            return AttemptEvent::Nothing;
        };
        if eof {
            return match (a.phase, a.resp_body.as_ref()) {
                (AttemptPhase::Relaying, Some(BodyTracker::UntilClose)) => AttemptEvent::Complete { reuse: false },
                (AttemptPhase::Holding, Some(BodyTracker::UntilClose)) => {
                    let status = a.resp.as_ref().map_or(502, |h| h.status);
                    AttemptEvent::Failed(Failure::Status(status))
                }
                (AttemptPhase::Holding, _) => {
                    ex.stash = None;
                    AttemptEvent::Failed(Failure::Closed("mid-body"))
                }
                (AttemptPhase::Priming, _) => {
                    ex.stash = None;
                    AttemptEvent::Failed(Failure::Closed("stream ended before any content"))
                }
                (AttemptPhase::Relaying, _) => AttemptEvent::Failed(Failure::Closed("mid-body")),
                _ if stale && up.inbuf.is_empty() => AttemptEvent::Stale,
                _ => AttemptEvent::Failed(Failure::Closed("before response head")),
            };
        }
        if write_failed && a.resp.is_none() {
            if stale {
                return AttemptEvent::Stale;
            }
            return AttemptEvent::Failed(Failure::Closed("while sending the request"));
        }
        if progress {
            AttemptEvent::Progress
        } else {
            AttemptEvent::Nothing
        }
    }
}
