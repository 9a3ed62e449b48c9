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
use crate::translate::Translated;

use crate::store::cluster::EndpointConfig;

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

impl Facts {
    /// The body as JSON text: `body` decoded when it came chunked.
    pub fn json_body<'a>(&'a self, body: &'a [u8]) -> &'a [u8] {
        self.decoded.as_deref().unwrap_or(body)
    }

    /// Decode a complete chunked `body` once (its JSON text for everything that reads it).
    pub fn decode(&mut self, framing: BodyFraming, complete: bool, body: &[u8]) {
        if framing != BodyFraming::Chunked || self.decoded.is_some() || !complete {
            return;
        }
        let mut plain = Vec::with_capacity(body.len());
        let mut decoder = ChunkedDecoder::new();
        // The body was re-framed by us as canonical chunks: it decodes (else it stays as it is).
        if decoder.feed_data(body, |d| plain.extend_from_slice(d)).is_ok() && decoder.is_done() {
            self.decoded = Some(plain);
        }
    }

    /// The request's token estimate, made once from its JSON text (`body`, the exchange's, as
    /// `json_body` reads it).
    pub fn estimate(&mut self, body: &[u8], prices: &crate::store::prices::PriceTable) -> Used {
        let Facts { decoded, estimate, .. } = self;
        let json = decoded.as_deref().unwrap_or(body);
        *estimate.get_or_insert_with(|| crate::policy::limits::estimate(json, prices))
    }

    /// Make the Chat Completions form of the request (`body`, the exchange's, as `json_body`
    /// reads it) for `endpoint` (`cfg`, an OpenAI-format one, the first that could serve it), once.
    pub fn read_chat(&mut self, endpoint: usize, cfg: &EndpointConfig, body: &[u8]) {
        let Facts { decoded, chat, .. } = self;
        if !matches!(chat, Chat::Unread) {
            return;
        }
        let json = decoded.as_deref().unwrap_or(body);
        *chat = match crate::translate::request(cfg, json) {
            Ok(t) => Chat::Made { endpoint, translated: Box::new(t) },
            Err(why) => Chat::Refused(why),
        };
    }

    /// Why the request has no Chat Completions form, when it has none.
    pub fn untranslatable(&self) -> Option<&str> {
        match &self.chat {
            Chat::Refused(why) => Some(why),
            _ => None,
        }
    }

    /// The Chat Completions form made for `endpoint`, taken (`None`: made for another, or not).
    pub fn take_chat(&mut self, endpoint: usize) -> Option<Translated> {
        match std::mem::take(&mut self.chat) {
            Chat::Made { endpoint: e, translated } if e == endpoint => {
                self.chat = Chat::Taken;
                Some(*translated)
            }
            other => {
                self.chat = other;
                None
            }
        }
    }
}
