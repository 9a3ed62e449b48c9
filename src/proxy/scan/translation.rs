//! An attempt on an OpenAI-format endpoint (`format: openai`): its body is the client's
//! Messages request translated (`translate::request`), and its answer is read through
//! `translate::Answer` into the connection's `inbuf`. What `forward/` then reads is an
//! Anthropic endpoint's answer, so the hold before first content, in-stream errors, usage,
//! charging and failover are the one path every endpoint takes.

use crate::proxy::event::io::IoOutcome;
use crate::proxy::event::transport::Transport;
use crate::proxy::scan::mapping::Mapped;
use crate::store::cluster::EndpointConfig;
use crate::translate::{Answer, Translated, Wants};

/// What an attempt keeps to translate its answer.
#[derive(Debug)]
pub struct Translation {
    answer: Answer,
    /// The upstream's bytes not yet translated.
    raw: Vec<u8>,
}

impl Translation {
    /// The body to send `cfg` (an OpenAI-format endpoint) for the client's `body` (its JSON
    /// text), and the attempt's translation; `made`: the request's form already made for this
    /// endpoint (`facts.rs`); `Err`: why the request has no Chat Completions form (a 400).
    /// `seed` makes the ids qcc invents unique.
    pub fn start(
        cfg: &EndpointConfig,
        body: &[u8],
        made: Option<Translated>,
        seed: u64,
        http10: bool,
    ) -> Result<(Mapped, Translation), String> {
        let t = match made {
            Some(t) => t,
            None => crate::translate::request(cfg, body)?,
        };
        let wants = Wants { stream: t.stream, http10 };
        let translation = Translation { answer: Answer::new(&t.to, seed, wants), raw: Vec::new() };
        Ok((Mapped::whole(t.body, t.from, t.to), translation))
    }

    /// Ready for the answer on a fresh connection (a pooled one turned out closed).
    pub fn restart(&mut self) {
        self.answer.reset();
        self.raw.clear();
    }

    /// Why the answer was cut or refused, once it was: the attempt fails with it.
    pub fn failure(&self) -> Option<&str> {
        self.answer.failure()
    }
}

/// Read once from an upstream connection: into its `inbuf` as sent, or through the attempt's
/// translation. The outcome is the socket's (`Progress` counts the bytes read from it), except
/// that a translated answer framed by the close reads as `Closed` once it is whole.
/// What sees an answer's bytes as they are read and as translated (the request's body log,
/// `--log-bodies`: `record/bodies.rs`).
pub trait Tap {
    fn raw(&mut self, bytes: &[u8]);
    fn translated(&mut self, bytes: &[u8]);
}

/// `tap`: given the bytes as read and as translated.
pub fn read(
    t: Option<&mut Translation>,
    from: &mut Transport,
    inbuf: &mut Vec<u8>,
    scratch: &mut [u8],
    tap: Option<&mut dyn Tap>,
) -> IoOutcome {
    let before = inbuf.len();
    let Some(t) = t else {
        let outcome = from.read(inbuf, scratch);
        if let Some(tap) = tap {
            tap.raw(&inbuf[before.min(inbuf.len())..]);
        }
        return outcome;
    };
    let raw_before = t.raw.len();
    let outcome = from.read(&mut t.raw, scratch);
    let mut tap = tap;
    if let Some(tap) = tap.as_deref_mut() {
        tap.raw(&t.raw[raw_before.min(t.raw.len())..]);
    }
    match outcome {
        IoOutcome::Closed => t.answer.eof(&mut t.raw, inbuf),
        _ => t.answer.feed(&mut t.raw, inbuf),
    }
    if let Some(tap) = tap {
        tap.translated(&inbuf[before.min(inbuf.len())..]);
    }
    if t.answer.ended_by_close() && matches!(outcome, IoOutcome::Progress(_)) {
        return IoOutcome::Closed; // what went out ends with the close: it is over (not pooled)
    }
    outcome
}
