//! Who may send a request, and within which limits: the access check (the access key, a client
//! key, the wrong-key lockout of `refusals.rs`) and a client key's caps and budgets as the
//! request starts (`policy/limits.rs`); a refusal is answered here, in the Anthropic error shape.

use std::rc::Rc;
use std::time::Instant;

use crate::mask::shown;
use crate::policy::limits::Refusal;
use crate::proxy::shared::keys::{Caller, Who};
use crate::proxy::shared::Shared;
use crate::proxy::state::Exchange;

impl Shared {
    /// Who sends this request, when the proxy asks (an access key or client keys exist, or it
    /// listens off loopback); else the status and message to refuse it with (the refusal is
    /// logged and counted here). The key's header is taken out of the head.
    pub(in crate::proxy) fn authenticate(
        &mut self,
        head: &mut crate::http::RequestHead,
        peer: std::net::SocketAddr,
        page: bool,
        cluster: Option<&str>,
        now: Instant,
    ) -> Result<Caller, (u16, String)> {
        let required = self.settings.access_key.is_some() || self.keys.defined() || !self.addr.ip().is_loopback();
        if !required || page {
            return Ok(Caller::Anyone);
        }
        let today = self.usage_day_no();
        let cluster = cluster.unwrap_or(&self.clusters[0].name);
        let who = self.keys.identify(head, self.settings.access_key.as_deref(), today, cluster);
        match who {
            // A valid key is never refused by the wrong-key lockout: a scraper or a page opened
            // without a key on the same address must not lock its owner out.
            Who::AccessKey => Ok(Caller::AccessKey),
            Who::Key(k) => Ok(Caller::Key(k)),
            Who::Denied(status, msg) => {
                self.log_refused(head, peer, &format!("{msg} -> {status}"), now);
                self.stats.unauthorized += 1;
                Err((status, msg))
            }
            Who::Nobody { presented } => {
                self.stats.unauthorized += 1;
                // Only a key presented and wrong counts toward the lockout (a request without
                // one guesses nothing).
                if presented > 0 {
                    if let Some(left) = self.refusals.locked(peer.ip(), now) {
                        self.log_refused(head, peer, "too many wrong access keys -> 429", now);
                        let msg = format!(
                            "too many wrong access keys from this address; try again in {} s",
                            left.as_secs() + 1
                        );
                        return Err((429, msg));
                    }
                    self.refusals.wrong_key(peer.ip(), now);
                }
                // Of what was offered, only its length is said: it may be a real key mistyped.
                let what = match presented {
                    0 => "no access key -> 401".to_string(),
                    n => format!("a wrong access key ({n} bytes) -> 401"),
                };
                self.log_refused(head, peer, &what, now);
                Err((401, "missing or invalid qcc access key".into()))
            }
        }
    }

    /// A client key's limits before `ex`'s request may go upstream: over one, the refusal for a
    /// 429 (Anthropic's `rate_limit_error`, with `retry-after`) and an alert; within them, the
    /// request is counted (its minute, its requests in progress, its day). Either way the
    /// exchange holds the key's ticket.
    pub(in crate::proxy) fn admit(&mut self, ex: &mut Exchange, caller: Caller, now: Instant) -> Result<(), Refusal> {
        use crate::proxy::state::KeyTicket;
        let (ticket, refused) = match caller {
            Caller::Anyone => return Ok(()),
            Caller::AccessKey => {
                // Its row in `qcc usage --by key` counts its requests, as a client key's does.
                let ticket = self.keys.access_ticket();
                self.usage_day();
                let wall = self.wall_secs();
                self.usage.key_request(&self.usage_day.1, &ticket.name, wall);
                self.usage_changed(now);
                (ticket, None)
            }
            Caller::Key(k) => {
                self.usage_day();
                let wall = self.wall_secs();
                let Shared { keys, usage, usage_day, .. } = self;
                let Some(key) = keys.get_mut(k) else { return Ok(()) };
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
                            !r.limit.is_budget() && crate::proxy::shared::keys::cap_alert_due(key, r.limit, now);
                        key.limited[r.limit.index()] += 1;
                        (
                            KeyTicket { name: Rc::clone(&key.name), _in_flight: None, budgeted: false, reserved: None },
                            Some((r, alert)),
                        )
                    }
                    Ok(()) => {
                        let ticket = keys.ticket(k);
                        usage.key_request(&usage_day.1, &ticket.name, wall);
                        self.usage_changed(now);
                        (ticket, None)
                    }
                }
            }
        };
        let name = Rc::clone(&ticket.name);
        ex.key = Some(ticket);
        let Some((r, alert)) = refused else { return Ok(()) };
        self.stats.limited += 1;
        log::info!("{} -> 429", r.message);
        if alert {
            self.budget_alert(&name, r.limit, &r.message, now);
        }
        Err(r)
    }

    /// One line for a refused request, within the refusal lines' rate limit (`refusals.rs`).
    pub(in crate::proxy) fn log_refused(
        &mut self,
        head: &crate::http::RequestHead,
        peer: std::net::SocketAddr,
        what: &str,
        now: Instant,
    ) {
        if let Some(n) = self.refusals.may_log(now) {
            let note = crate::proxy::shared::refusals::suppressed_note(n);
            log::warn!("{} {} from {peer}: {what}{note}", head.method(), shown(head.target()));
        }
    }
}
