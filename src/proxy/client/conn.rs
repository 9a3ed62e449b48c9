//! `Conn`: one client connection with what its work needs lent beside it — the upstream side
//! (`Net`) and the shared state (`Shared`). The loop makes one for each step it takes on a
//! connection (`lifecycle.rs`) and drops it after. The connection's own work is its methods: the
//! pump and the exchange (`exchange.rs`), attempts (`forward/attempt.rs`), how they end
//! (`forward/outcome.rs`) and its replies (`reply.rs`). What needs every connection in view — an
//! admin page, a reply under the bound on unread local replies — it leaves to the loop as an
//! `Ask`.

use std::time::Instant;

use crate::http::RequestHead;
use crate::proxy::event::slab::Key;
use crate::proxy::shared::keys::Caller;
use crate::proxy::shared::Shared;
use crate::proxy::state::{Attempt, Client, ClientPhase};
use crate::proxy::upstream::net::Net;

pub struct Conn<'a> {
    pub key: Key,
    pub c: &'a mut Client,
    pub net: &'a mut Net,
    pub sh: &'a mut Shared,
    /// The proxy is stopping: no reply keeps its connection open.
    pub draining: bool,
    /// What this step left to the loop.
    pub ask: Option<Ask>,
}

/// What one pump of a client connection achieved.
pub enum Pump {
    Progress,
    Blocked,
    Close,
}

/// What a connection leaves to the loop, which sees every connection.
pub enum Ask {
    /// A request for `/_qcc/...` or `/metrics` (`admin/routes.rs`), and who asks.
    Admin(Box<RequestHead>, Caller),
    /// A JSON reply qcc made itself (a translation's local answer), to pass the bound on unread
    /// local replies first.
    Reply { keep_alive: bool, status: u16, body: serde_json::Value },
}

impl Conn<'_> {
    /// One line per request; `note` says why a request failed or what happened in its stream.
    pub fn log_request(&mut self, endpoint: Option<usize>, status: Option<u16>, note: &str, now: Instant) {
        if let ClientPhase::Exchange(ex) = &self.c.phase {
            self.sh.log_exchange(ex, self.c.out.pushed(), endpoint, status, note, now);
        }
    }

    /// `record_usage` for this connection's exchange: its session and key.
    /// `asked`: the model the client asked for, when the endpoint got another name (its price
    /// applies when the answering model has none).
    pub fn charge(
        &mut self,
        idx: usize,
        model: Option<&str>,
        asked: Option<&str>,
        counts: &crate::store::usage::Counts,
        now: Instant,
    ) {
        if let ClientPhase::Exchange(ex) = &mut self.c.phase {
            let key = ex.key.as_ref().map(|t| &t.name);
            ex.priced_as = self.sh.record_usage(idx, model, asked, counts, ex.session.as_deref(), key, now);
        }
    }
}

/// The current attempt of `c`'s exchange, if it has one.
pub fn attempt_mut(c: &mut Client) -> Option<&mut Attempt> {
    match &mut c.phase {
        ClientPhase::Exchange(ex) => ex.attempt.as_mut(),
        _ => None,
    }
}
