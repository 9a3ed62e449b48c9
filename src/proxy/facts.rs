//! The request, read once. When a request's body is complete (its key's reservation, or its first
//! attempt, whichever comes first: `client/read.rs`), what every decision about it needs is found
//! in one read and kept in its exchange: the body as JSON text (a chunked body's framing decoded:
//! routes, reservations and translation read that, never the framed bytes); from one borrowed
//! pass (`policy::route::look`), its route, its model's place (model maps splice there) and its
//! `max_tokens`, from which its token estimate is made (a key's reservation, an endpoint's `--tpm`
//! hold); and, when an OpenAI-format endpoint could serve it, the request as Chat Completions, or
//! why it has no such form. Eligibility (`eligibility.rs`) reads the last to keep such an endpoint
//! out of a request it cannot take, before anything is picked. What no decision needs is never
//! read: a request with no routes, maps, budgets, caps or translation is never parsed.
//!
//! Its stream flag, tools, thinking and images are read where they decide something: the route
//! pass reads the last three when a route looks at them, and translation reads them all as it
//! makes the other dialect's body (which needs every field anyway).

use crate::http::chunked::ChunkedDecoder;
use crate::http::BodyFraming;
use crate::policy::limits::Used;
use crate::policy::route::{Looked, ModelAt, Want};
use crate::store::routes::Route;
use crate::translate::Translated;

use crate::store::cluster::EndpointConfig;

/// How far into a body `Facts::look_model` looks for the model.
pub const MODEL_PREFIX: usize = 4096;

/// What one read of a request found (see the module's doc).
#[derive(Default)]
pub struct Facts {
    /// The body with its chunked framing decoded (`None`: the exchange's body is plain JSON
    /// text already, or not read yet).
    pub decoded: Option<Vec<u8>>,
    /// What the one pass found (route, model, `max_tokens`) and what it was asked for, routes
    /// included (`None`: not read yet).
    looked: Option<(Looked, Want, bool)>,
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

    /// Read the request (`body`, the exchange's, as `json_body` reads it) once, for `routes` and
    /// what `want` asks. Asked later for something that read was not asked for (an estimate
    /// after a read for routes only, a reload that added a map), it reads again for all of it,
    /// keeping the route it matched.
    pub fn look(&mut self, routes: &[Route], body: &[u8], want: Want) {
        let mut want = want;
        let (mut earlier, mut was_routed) = (None, false);
        if let Some((l, had, routed)) = &self.looked {
            if had.covers(want) && (*routed || routes.is_empty()) {
                return;
            }
            want = want.or(*had);
            (earlier, was_routed) = (l.route, *routed);
        }
        let json = self.decoded.as_deref().unwrap_or(body);
        let mut looked = crate::policy::route::look(routes, json, want);
        looked.route = looked.route.or(earlier);
        self.looked = Some((looked, want, was_routed || !routes.is_empty()));
    }

    /// Where its model is when it carries a tag (`[1m]`), when nothing else read it: looked for
    /// in the body's first `MODEL_PREFIX` bytes only (Claude Code sends it first, read then
    /// without a parser), so that a tag never goes upstream while a request nobody else reads
    /// costs a few bytes' read, not its size, and no allocation.
    pub fn look_model(&mut self, body: &[u8]) {
        if self.looked.is_some() {
            return;
        }
        let json = self.decoded.as_deref().unwrap_or(body);
        if let Some((at, len, name)) = crate::policy::route::model_first(json) {
            let tagged = crate::store::models::untagged(name).1.is_some();
            let model = tagged.then(|| ModelAt { at, len, name: name.to_string() });
            self.looked = Some((Looked { model, ..Looked::default() }, Want::default(), false));
            return;
        }
        let want = Want { model: true, ..Want::default() };
        let prefix = &json[..json.len().min(MODEL_PREFIX)];
        let mut looked = crate::policy::route::look(&[], prefix, want);
        if looked.model.is_none() && prefix.len() < json.len() {
            // Cut inside a character, perhaps: the parser reads only whole UTF-8.
            let whole = std::str::from_utf8(prefix).map_or_else(|e| e.valid_up_to(), |_| prefix.len());
            looked = crate::policy::route::look(&[], &prefix[..whole], want);
        }
        self.looked = Some((looked, Want::default(), false));
    }

    /// The route it matched (an index into the started cluster's routes).
    pub fn route(&self) -> Option<usize> {
        self.looked.as_ref().and_then(|(l, _, _)| l.route)
    }

    /// Where each of its top-level fields is (read when an endpoint has request rules).
    pub fn fields(&self) -> &[crate::policy::route::FieldAt] {
        self.looked.as_ref().map_or(&[], |(l, _, _)| &l.fields)
    }

    /// Where its model is (read when a model map or an estimate asked).
    pub fn model(&self) -> Option<&ModelAt> {
        self.looked.as_ref().and_then(|(l, _, _)| l.model.as_ref())
    }

    /// The request's token estimate, made once, from its size and what the one read found
    /// (`body`, the exchange's; read now for it when it was not read yet).
    pub fn estimate(&mut self, body: &[u8], prices: &crate::store::prices::PriceTable) -> Used {
        if let Some(e) = self.estimate {
            return e;
        }
        self.look(&[], body, Want { estimate: true, ..Want::default() });
        let len = self.json_body(body).len();
        let (max_tokens, model) = match &self.looked {
            Some((l, _, _)) => (l.max_tokens, l.model.as_ref().map(|m| m.name.as_str())),
            None => (None, None),
        };
        *self.estimate.insert(crate::policy::limits::estimate(len, max_tokens, model, prices))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_read_serves_the_route_the_model_and_the_estimate() {
        let routes = vec![Route::from_args(Some("claude-*haiku*"), None, "fast").expect("a route")];
        let body = br#"{"model":"claude-haiku-4-5","max_tokens":100,"messages":[]}"#;
        let prices = crate::store::prices::PriceTable::default();
        let mut f = Facts::default();
        f.look(&routes, body, Want { model: true, estimate: true, fields: false });
        assert_eq!(f.route(), Some(0));
        assert_eq!(f.model().map(|m| m.name.as_str()), Some("claude-haiku-4-5"));
        assert_eq!(f.estimate(body, &prices).tokens, 100 + body.len() as u64 / 4);
        // Read for the routes only, then asked for an estimate: read again, the route kept.
        let mut f = Facts::default();
        f.look(&routes, body, Want::default());
        assert_eq!((f.route(), f.model().is_some()), (Some(0), true), "a model route reads the model");
        assert_eq!(f.estimate(body, &prices).tokens, 100 + body.len() as u64 / 4);
        assert_eq!(f.route(), Some(0));
        // A chunked body is read as its JSON text.
        let framed = format!("{:x}\r\n{}\r\n0\r\n\r\n", body.len(), std::str::from_utf8(body).unwrap());
        let mut f = Facts::default();
        f.decode(BodyFraming::Chunked, true, framed.as_bytes());
        f.look(&routes, framed.as_bytes(), Want::default());
        assert_eq!(f.route(), Some(0));
        assert_eq!(f.estimate(framed.as_bytes(), &prices).tokens, 100 + body.len() as u64 / 4);
    }
}
