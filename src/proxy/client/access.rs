//! Who may send a request, and within which limits: the access check (the access key, a client
//! key, the wrong-key lockout of `refusals.rs`) and a client key's caps and budgets as the
//! request starts (`policy/limits.rs`); a refusal is answered here, in the Anthropic error shape.

use std::rc::Rc;
use std::time::Instant;

use crate::proxy::client::exchange::shown;
use crate::proxy::client::keys::{Caller, Who};
use crate::proxy::event::slab::Key;
use crate::proxy::state::ClientPhase;
use crate::proxy::EventLoop;

impl EventLoop {
    /// Who sends this request, when the proxy asks (an access key or client keys exist, or it
    /// listens off loopback); `None` when it was refused (answered here). The key's header is
    /// taken out of the head.
    pub(in crate::proxy) fn authenticate(
        &mut self,
        ck: Key,
        head: &mut crate::http::RequestHead,
        page: bool,
        now: Instant,
    ) -> Option<Caller> {
        let required =
            self.sh.settings.access_key.is_some() || self.sh.keys.defined() || !self.sh.addr.ip().is_loopback();
        if !required || page {
            return Some(Caller::Anyone);
        }
        let peer = self.clients.get(ck).map(|c| c.peer)?;
        let today = self.sh.usage_day_no();
        let who =
            self.sh.keys.identify(head, self.sh.settings.access_key.as_deref(), today, &self.sh.settings.main().name);
        match who {
            // A valid key is never refused by the wrong-key lockout: a scraper or a page opened
            // without a key on the same address must not lock its owner out.
            Who::AccessKey => Some(Caller::AccessKey),
            Who::Key(k) => Some(Caller::Key(k)),
            Who::Denied(status, msg) => {
                self.log_refused(head, peer, &format!("{msg} -> {status}"), now);
                self.sh.stats.unauthorized += 1;
                self.respond_local_error(ck, status, &msg, now);
                None
            }
            Who::Nobody { presented } => {
                self.sh.stats.unauthorized += 1;
                // Only a key presented and wrong counts toward the lockout (a request without
                // one guesses nothing).
                if presented > 0 {
                    if let Some(left) = self.sh.refusals.locked(peer.ip(), now) {
                        self.log_refused(head, peer, "too many wrong access keys -> 429", now);
                        let msg = format!(
                            "too many wrong access keys from this address; try again in {} s",
                            left.as_secs() + 1
                        );
                        self.respond_local_error(ck, 429, &msg, now);
                        return None;
                    }
                    self.sh.refusals.wrong_key(peer.ip(), now);
                }
                // Of what was offered, only its length is said: it may be a real key mistyped.
                let what = match presented {
                    0 => "no access key -> 401".to_string(),
                    n => format!("a wrong access key ({n} bytes) -> 401"),
                };
                self.log_refused(head, peer, &what, now);
                self.respond_local_error(ck, 401, "missing or invalid qcc access key", now);
                None
            }
        }
    }

    /// A client key's limits before its request may go upstream: over one, a 429 (Anthropic's
    /// `rate_limit_error`, with `retry-after`) and an alert; within them, the request is counted
    /// (its minute, its requests in progress, its day). False when refused.
    pub(in crate::proxy) fn admit_caller(&mut self, ck: Key, caller: Caller, now: Instant) -> bool {
        use crate::proxy::state::KeyTicket;
        let (ticket, refused) = match caller {
            Caller::Anyone => return true,
            Caller::AccessKey => (self.sh.keys.access_ticket(), None),
            Caller::Key(k) => {
                self.sh.usage_day();
                let wall = self.sh.wall_secs();
                let crate::proxy::shared::Shared { keys, usage, usage_day, .. } = &mut self.sh;
                let Some(key) = keys.get_mut(k) else { return true };
                let counted = usage.key_day(&usage_day.1, &key.entry.name);
                let used = crate::policy::limits::Used::from(&counted).with(key.reserved.get());
                let verdict = crate::policy::limits::admit(
                    &key.entry.name,
                    &key.entry.limits,
                    used,
                    key.in_flight.get(),
                    &mut key.window,
                    crate::policy::limits::secs_to_midnight(wall),
                    now,
                );
                match verdict {
                    Err(r) => {
                        // A budget's alert went out when it was reached (`record_usage`); a
                        // cap's at its first refusal in an hour.
                        let alert =
                            !r.limit.is_budget() && crate::proxy::client::keys::cap_alert_due(key, r.limit, now);
                        key.limited[r.limit.index()] += 1;
                        (
                            KeyTicket { name: Rc::clone(&key.name), _in_flight: None, budgeted: false, reserved: None },
                            Some((r, alert)),
                        )
                    }
                    Ok(()) => {
                        let ticket = keys.ticket(k);
                        usage.key_request(&usage_day.1, &ticket.name, wall);
                        self.sh.usage_changed(now);
                        (ticket, None)
                    }
                }
            }
        };
        let name = Rc::clone(&ticket.name);
        if let Some(ClientPhase::Exchange(ex)) = self.clients.get_mut(ck).map(|c| &mut c.phase) {
            ex.key = Some(ticket);
        }
        let Some((r, alert)) = refused else { return true };
        self.sh.stats.limited += 1;
        log::info!("{} -> 429", r.message);
        if alert {
            self.sh.budget_alert(&name, r.limit, &r.message, now);
        }
        self.respond_refusal(ck, 429, &r.message, r.retry_after_secs, now);
        false
    }

    /// One line for a refused request, within the refusal lines' rate limit (`refusals.rs`).
    pub(in crate::proxy) fn log_refused(
        &mut self,
        head: &crate::http::RequestHead,
        peer: std::net::SocketAddr,
        what: &str,
        now: Instant,
    ) {
        if let Some(n) = self.sh.refusals.may_log(now) {
            let note = crate::proxy::client::refusals::suppressed_note(n);
            log::warn!("{} {} from {peer}: {what}{note}", head.method(), shown(head.target()));
        }
    }
}
