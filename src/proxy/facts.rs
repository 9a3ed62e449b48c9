//! The request, read once. When a request's body is complete and its first attempt is due, what
//! every decision about it needs is found once and kept in its exchange: the body as JSON text
//! (a chunked body's framing decoded: routes, reservations and translation read that, never the
//! framed bytes), its route and its model's place (`policy::route::look`, kept as
//! `Exchange::route` and `Exchange::model`), its token estimate (a key's reservation, an
//! endpoint's `--tpm` hold), and, when an OpenAI-format endpoint could serve it, the request as
//! Chat Completions, or why it has no such form. Eligibility (`eligibility.rs`) reads the last to
//! keep such an endpoint out of a request it cannot take, before anything is picked.

use crate::http::chunked::ChunkedDecoder;
use crate::http::BodyFraming;
use crate::policy::limits::Used;
use crate::translate::request::Translated;

use super::state::{Endpoint, Exchange};

/// What one read of a request found (see the module's doc).
#[derive(Default)]
pub struct Facts {
    /// The body with its chunked framing decoded (`None`: the exchange's body is plain JSON
    /// text already, or not read yet).
    pub decoded: Option<Vec<u8>>,
    /// Its token estimate (input from its size, output its `max_tokens`) and their price, once
    /// something needed it.
    pub estimate: Option<Used>,
    /// The request as Chat Completions.
    pub chat: Chat,
}

/// The request's Chat Completions form, made once for the first OpenAI-format endpoint that
/// could serve it.
#[derive(Default)]
pub enum Chat {
    /// Not made: no OpenAI-format endpoint could serve it, or it is not read yet.
    #[default]
    Unread,
    /// Made for endpoint `endpoint` (its model map and options), until that endpoint's attempt
    /// takes it.
    Made { endpoint: usize, translated: Box<Translated> },
    /// Made and taken by an attempt (another OpenAI-format endpoint translates it again, with
    /// its own map and options).
    Taken,
    /// It has none: why (said in the 400 when no other endpoint may serve it).
    Refused(String),
}

impl Exchange {
    /// The body as JSON text: decoded when it came chunked.
    pub fn json_body(&self) -> &[u8] {
        self.facts.decoded.as_deref().unwrap_or(&self.body)
    }

    /// Decode a complete chunked body once (its JSON text for everything that reads it).
    pub fn decode_body(&mut self) {
        if self.head.framing != BodyFraming::Chunked || self.facts.decoded.is_some() || !self.body_tracker.is_done() {
            return;
        }
        let mut plain = Vec::with_capacity(self.body.len());
        let mut decoder = ChunkedDecoder::new();
        // The body was re-framed by us as canonical chunks: it decodes (else it stays as it is).
        if decoder.feed_data(&self.body, |d| plain.extend_from_slice(d)).is_ok() && decoder.is_done() {
            self.facts.decoded = Some(plain);
        }
    }

    /// The request's token estimate (made once, from its JSON text).
    pub fn estimate(&mut self, prices: &crate::store::prices::PriceTable) -> Used {
        if let Some(e) = self.facts.estimate {
            return e;
        }
        self.decode_body();
        let e = crate::proxy::client::reserve::estimate(self.json_body(), prices);
        self.facts.estimate = Some(e);
        e
    }

    /// Make the request's Chat Completions form for `endpoint` (an OpenAI-format one, the first
    /// that could serve it), once.
    pub fn read_chat(&mut self, endpoint: usize, ep: &Endpoint) {
        if !matches!(self.facts.chat, Chat::Unread) || !self.translatable() {
            return;
        }
        self.facts.chat = match crate::proxy::upstream::translation::translate(&ep.cfg, self.json_body()) {
            Ok(t) => Chat::Made { endpoint, translated: Box::new(t) },
            Err(why) => Chat::Refused(why),
        };
    }

    /// Endpoint `ep`'s format can take this request: any request for an Anthropic one; for an
    /// OpenAI-format one, a whole `POST /v1/messages` that has a Chat Completions form.
    pub fn dialect_takes(&self, ep: &Endpoint) -> bool {
        !ep.cfg.format.is_openai() || (self.translatable() && !matches!(self.facts.chat, Chat::Refused(_)))
    }

    /// Why no OpenAI-format endpoint can take it, when its content is the reason.
    pub fn untranslatable(&self) -> Option<&str> {
        match &self.facts.chat {
            Chat::Refused(why) => Some(why),
            _ => None,
        }
    }

    /// The Chat Completions form made for `endpoint`, taken (`None`: made for another, or not).
    pub fn take_chat(&mut self, endpoint: usize) -> Option<Translated> {
        match std::mem::take(&mut self.facts.chat) {
            Chat::Made { endpoint: e, translated } if e == endpoint => {
                self.facts.chat = Chat::Taken;
                Some(*translated)
            }
            other => {
                self.facts.chat = other;
                None
            }
        }
    }
}
