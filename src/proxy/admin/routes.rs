//! The proxy's own endpoints under `/_qcc/` and `/metrics`, answered on the loop: the
//! dashboard page, `GET /_qcc/status|recent|history` (JSON), and the actions `POST
//! /_qcc/queue/clear|reload|probe|endpoint`. Actions need the header `x-qcc-action: 1`, which a
//! page on another site cannot send without a CORS preflight (refused unless its origin is
//! allowed). Keys never appear here. Local replies are bounded all together (`LOCAL_REPLIES_MAX`).

use std::time::Instant;

use serde_json::json;

use crate::http::{BodyFraming, RequestHead};
use crate::proxy::event::slab::Key;
use crate::proxy::state::LOCAL_REPLIES_MAX;
use crate::proxy::EventLoop;

/// The dashboard: one self-contained page (no CDN, no build step), compiled in.
const DASHBOARD: &str = include_str!("dashboard.html");

impl EventLoop {
    /// Answer a request for `/_qcc/...` or `/metrics` (already let through by the client's
    /// `start_exchange`) on the loop itself.
    pub(in crate::proxy) fn serve_admin(
        &mut self,
        ck: Key,
        head: &RequestHead,
        caller: crate::proxy::shared::keys::Caller,
        now: Instant,
    ) {
        if head.target_bytes() == b"/metrics" {
            if self.refuse_local_reply(ck, 0, now) {
                return;
            }
            let text = self.sh.metrics_text(&self.conns(), now);
            let status = if head.method_bytes() == b"GET" { 200 } else { 405 };
            self.respond_admin(ck, head, status, "text/plain; version=0.0.4; charset=utf-8", text.as_bytes(), now);
            return;
        }
        if !matches!(head.framing, BodyFraming::None | BodyFraming::Length(0)) {
            self.with_conn(ck, now, |conn| {
                conn.respond_local_error(400, "the /_qcc/ endpoints take no request body", now)
            });
            return;
        }
        if self.refuse_local_reply(ck, 0, now) {
            return;
        }
        let (path, query) = head.target().split_once('?').unwrap_or((head.target(), ""));
        // Decoded as the page's `encodeURIComponent` encodes (`?endpoint=my%20relay`).
        let params = crate::proxy::admin::query::Params::parse(query);
        let param = |name: &str| params.get(name).map(str::to_string);
        let action = head.method() == "POST";
        let marked = head.headers().any(|(n, v)| n.eq_ignore_ascii_case(b"x-qcc-action") && v == b"1");
        // With no key configured (loopback), an action also needs the page's own token: only a
        // page this proxy served has it (another site cannot read the page, and a rebinding
        // one fails the Host check).
        let anyone = caller == crate::proxy::shared::keys::Caller::Anyone;
        let page_token = head
            .headers()
            .any(|(n, v)| n.eq_ignore_ascii_case(b"x-qcc-token") && v.trim_ascii() == self.sh.page_token.as_bytes());
        let (status, body) = match (head.method(), path) {
            _ if action && !marked => (
                403,
                json!({"type": "error", "error": {"type": "permission_error",
                       "message": "qcc actions need the header x-qcc-action: 1"}}),
            ),
            _ if action && anyone && !page_token => (
                403,
                json!({"type": "error", "error": {"type": "permission_error",
                       "message": "qcc actions from a browser need the dashboard's token: reload the page"}}),
            ),
            ("GET", "/_qcc/" | "/_qcc") => {
                let page = DASHBOARD.replace("__QCC_PAGE_TOKEN__", &self.sh.page_token);
                self.respond_admin(ck, head, 200, "text/html; charset=utf-8", page.as_bytes(), now);
                return;
            }
            ("POST", p) if crate::proxy::admin::manage::is_edit(p) => {
                // A dashboard edit: made on the disk thread; the client waits for its result.
                match crate::proxy::admin::manage::edit_of(p, &params, head) {
                    Ok(edit) => self.request_reload(edit, Some((ck, head.keep_alive)), now),
                    Err(e) if e.is_empty() => self.respond_admin_error(ck, head, 404, "no such action", now),
                    Err(e) => self.respond_admin_error(ck, head, 400, &e, now),
                }
                return;
            }
            ("GET", "/_qcc/status") => (200, self.sh.status_json(&self.conns(), now)),
            ("GET", "/_qcc/recent") => (200, self.sh.recent.to_json()),
            ("GET", "/_qcc/session") => (200, self.sh.session_json(&param("id").unwrap_or_default())),
            ("GET", "/_qcc/usage") => {
                // What `qcc usage` shows while the proxy runs: counted up to the last answer.
                let n =
                    param("days").and_then(|v| v.parse().ok()).unwrap_or(7usize).min(crate::store::usage::KEEP_DAYS);
                (
                    200,
                    json!({"days": self.sh.usage.last_days(n), "sessions": self.sh.usage.last_sessions(n),
                           "keys": self.sh.usage.last_keys(n)}),
                )
            }
            ("POST", "/_qcc/endpoint") => {
                // (an endpoint by id or by name)
                let which = param("endpoint").map(|w| self.endpoint_id(&w).unwrap_or(w));
                let (Some(id), Some(enabled)) = (which, param("enabled")) else {
                    self.respond_admin_error(ck, head, 400, "give ?endpoint=ID&enabled=true|false", now);
                    return;
                };
                // The config is edited and read again on the disk thread; the answer follows.
                let edit = crate::proxy::shared::disk::Edit::Enable { id, enabled: enabled == "true" };
                self.request_reload(edit, Some((ck, head.keep_alive)), now);
                return;
            }
            ("GET", "/_qcc/history") => {
                let n = param("n").and_then(|v| v.parse().ok()).unwrap_or(50);
                // (an endpoint by id or by name)
                let which = param("endpoint").map(|w| self.endpoint_id(&w).unwrap_or(w));
                (200, self.sh.history.to_json(which.as_deref(), n))
            }
            ("GET", "/_qcc/logs") => {
                match self.searches.start(ck, head.keep_alive, query, &self.sh.settings) {
                    Ok(()) => {
                        self.with_conn(ck, now, |conn| conn.wait(head.keep_alive, now));
                    }
                    Err((status, body)) => self.respond_json(ck, head.keep_alive, status, &body, now),
                }
                return;
            }
            ("POST", "/_qcc/reload") => {
                self.request_reload(crate::proxy::shared::disk::Edit::None, Some((ck, head.keep_alive)), now);
                return;
            }
            ("POST", "/_qcc/probe") => {
                // Probe now: one endpoint, the queued ones (?queued=1), or all of them.
                let only = param("endpoint");
                let queued = param("queued").is_some();
                let picked: Vec<usize> = (0..self.sh.endpoints.len())
                    .filter(|&i| {
                        let ep = &self.sh.endpoints[i];
                        !ep.retired
                            && only.as_deref().is_none_or(|w| ep.cfg.id == w || ep.cfg.name == w)
                            && (!queued || self.sh.failures.contains(&ep.cfg.id))
                    })
                    .collect();
                if picked.is_empty() && only.is_some() {
                    (404, json!({"type": "error", "error": {"type": "not_found_error", "message": "no such endpoint"}}))
                } else {
                    let ids: Vec<String> = picked.iter().map(|&i| self.sh.endpoints[i].cfg.id.clone()).collect();
                    let at = crate::store::timefmt::iso(std::time::SystemTime::now());
                    for i in picked {
                        // Asked for now: a probe already under way (it may have started before
                        // the fix the user made) gives way to a fresh one.
                        self.probes.cancel(&mut self.net, &mut self.sh, i);
                        self.probes.start(&mut self.net, &mut self.sh, i, now);
                    }
                    (200, json!({"probing": ids, "at": at}))
                }
            }
            ("POST", "/_qcc/queue/clear") => {
                let n = self.sh.failures.len();
                // A cleared endpoint must be eligible again: no longer queued means no probe
                // will ever restore it, so its failure verdict goes too.
                for ep in self.sh.endpoints.iter_mut().filter(|ep| self.sh.failures.contains(&ep.cfg.id)) {
                    ep.health.forget_failures();
                }
                let cleared: Vec<usize> = (0..self.sh.endpoints.len())
                    .filter(|&i| self.sh.failures.contains(&self.sh.endpoints[i].cfg.id))
                    .collect();
                self.sh.failures.clear();
                self.sh.queue_changed(now);
                for i in cleared {
                    self.sh.endpoint_up_alert(i, "failure queue cleared", now);
                }
                log::info!("failure queue cleared ({n} endpoints) by request");
                self.sh.history.push("", "cleared", format!("{n} endpoints"));
                (200, json!({"cleared": n}))
            }
            (
                _,
                "/_qcc/status" | "/_qcc/history" | "/_qcc/recent" | "/_qcc/session" | "/_qcc/usage" | "/_qcc/logs"
                | "/_qcc/queue/clear" | "/_qcc/reload" | "/_qcc/probe" | "/_qcc/endpoint" | "/_qcc/",
            ) => (
                405,
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": "method not allowed"}}),
            ),
            _ => {
                (404, json!({"type": "error", "error": {"type": "not_found_error", "message": "no such qcc endpoint"}}))
            }
        };
        self.respond_admin(ck, head, status, "application/json", body.to_string().as_bytes(), now);
    }

    pub(in crate::proxy) fn respond_admin_error(
        &mut self,
        ck: Key,
        head: &RequestHead,
        status: u16,
        msg: &str,
        now: Instant,
    ) {
        let body = json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}});
        self.respond_admin(ck, head, status, "application/json", body.to_string().as_bytes(), now);
    }

    /// A local answer on the client connection, which then reads its next request (or closes).
    /// A request that announced a body is answered with `Connection: close`: its body is never
    /// read as the connection's next request (smuggling past a front proxy that filters by path).
    pub(in crate::proxy) fn respond_admin(
        &mut self,
        ck: Key,
        head: &RequestHead,
        status: u16,
        ctype: &str,
        body: &[u8],
        now: Instant,
    ) {
        let keep_alive = head.keep_alive && matches!(head.framing, BodyFraming::None | BodyFraming::Length(0));
        self.respond_local(ck, keep_alive, status, ctype, body, now);
    }

    /// A JSON local answer (`respond_local`).
    pub(in crate::proxy) fn respond_json(
        &mut self,
        ck: Key,
        keep_alive: bool,
        status: u16,
        body: &serde_json::Value,
        now: Instant,
    ) {
        self.respond_local(ck, keep_alive, status, "application/json", body.to_string().as_bytes(), now);
    }

    /// `respond_admin` for a request whose head is gone (answered after the disk thread), under
    /// the bound on unread local replies.
    pub(in crate::proxy) fn respond_local(
        &mut self,
        ck: Key,
        keep_alive: bool,
        status: u16,
        ctype: &str,
        body: &[u8],
        now: Instant,
    ) {
        if !self.refuse_local_reply(ck, body.len(), now) {
            self.with_conn(ck, now, |conn| conn.push_reply(keep_alive, status, ctype, body, now));
        }
    }

    /// Replies the proxy made itself and its clients have not read are bounded all together
    /// (each connection holds at most one past `CLIENT_OUT_HIGH`; see `pump_head`): forty
    /// clients that ask for /metrics and never read must not hold forty copies. True when the
    /// request was answered 503 instead (checked before a reply is made, with `size` 0, so that
    /// a flood costs no reply-making either, and with the reply's size once it is made).
    pub(in crate::proxy) fn refuse_local_reply(&mut self, ck: Key, size: usize, now: Instant) -> bool {
        let queued: usize = self.clients.iter().map(|c| c.out.local_pending()).sum();
        if queued + size <= LOCAL_REPLIES_MAX {
            return false;
        }
        self.sh.stats.rejected += 1;
        log::debug!("{queued} unread bytes of local replies queued -> 503");
        self.with_conn(ck, now, |conn| {
            conn.respond_local_error(503, "the proxy holds too many unread replies; try again", now)
        });
        true
    }

    /// The id of the (live) endpoint that `which` names: its id or its name.
    fn endpoint_id(&self, which: &str) -> Option<String> {
        let live = || self.sh.endpoints.iter().filter(|e| !e.retired);
        live().find(|e| e.cfg.id == which).or_else(|| live().find(|e| e.cfg.name == which)).map(|e| e.cfg.id.clone())
    }
}
