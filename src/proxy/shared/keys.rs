//! Who is asking: the access key or one of the named client keys (`store/keys.rs`), presented
//! as `x-api-key` or `Authorization: Bearer`, and the key's limits (`policy/limits.rs`) before a
//! request may go upstream. The header that carried a key is dropped from the request: no key of
//! ours is ever forwarded.
//!
//! The keys table is the loop's (one owner): the disk thread reads `keys.json` when it changes
//! and hands the parsed file over; `apply` swaps it in, keeping each key's live counters (its
//! minute window, its requests in progress) by name, so `qcc key set` resets nothing.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use crate::http::RequestHead;
use crate::policy::limits::{Limit, Window};
use crate::proxy::state::{InFlight, KeyTicket};
use crate::store::keys::{KeyEntry, KeyFile};

/// The name requests made with the single access key are counted under (no key name can hold
/// parentheses or spaces).
pub const ACCESS_KEY_NAME: &str = "(access key)";

/// One key as the loop keeps it.
pub struct LiveKey {
    pub entry: KeyEntry,
    pub name: Rc<str>,
    /// Requests of this key in progress, held by the `KeyTicket` of each.
    pub in_flight: Rc<Cell<u32>>,
    /// What its requests in progress reserved against its budgets (`policy::limits::Reservation`).
    pub reserved: crate::policy::limits::Reserved,
    pub window: Window,
    /// When a cap (rpm, concurrent) last raised a `budget_reached` alert (one an hour).
    pub cap_alerted: [Option<Instant>; 2],
    /// Requests refused by each limit (`Limit::ALL` order) since the proxy started.
    pub limited: [u64; 4],
}

/// Who sent a request, as far as the proxy asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No key is asked for (loopback, no access key, no client keys).
    Anyone,
    AccessKey,
    /// Client key number `k` of the table.
    Key(usize),
}

/// What the presented credentials say.
pub enum Who {
    AccessKey,
    Key(usize),
    /// A key of ours that may not be used (revoked, expired, for another cluster).
    Denied(u16, String),
    /// No key of ours; `presented` the length of what was offered (0: nothing).
    Nobody {
        presented: usize,
    },
}

#[derive(Default)]
pub struct ClientKeys {
    keys: Vec<LiveKey>,
    by_hash: HashMap<[u8; 32], usize>,
    /// Where each key's name is in `keys` (a response's usage finds its key without a scan).
    by_name: HashMap<Rc<str>, usize>,
    access: Option<Rc<str>>,
}

impl ClientKeys {
    /// Whether the file defines any key (revoked ones too: revoking the last key must not open
    /// the proxy to everyone).
    pub fn defined(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &LiveKey> {
        self.keys.iter()
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut LiveKey> {
        self.keys.get_mut(i)
    }

    /// The key of this name.
    pub fn find(&self, name: &str) -> Option<&LiveKey> {
        self.by_name.get(name).and_then(|&i| self.keys.get(i))
    }

    pub fn find_mut(&mut self, name: &str) -> Option<&mut LiveKey> {
        self.by_name.get(name).and_then(|&i| self.keys.get_mut(i))
    }

    /// Swap in a freshly read keys file, keeping live counters by name.
    pub fn apply(&mut self, file: KeyFile) {
        let mut old: HashMap<Rc<str>, LiveKey> = self.keys.drain(..).map(|k| (Rc::clone(&k.name), k)).collect();
        self.by_hash.clear();
        self.by_name.clear();
        for entry in file.keys {
            let Some(hash) = crate::store::bytes::unhex32(&entry.sha256) else { continue };
            let live = match old.remove(entry.name.as_str()) {
                Some(mut k) => {
                    k.entry = entry;
                    k
                }
                None => LiveKey {
                    name: Rc::from(entry.name.as_str()),
                    entry,
                    in_flight: Rc::new(Cell::new(0)),
                    reserved: Default::default(),
                    window: Window::default(),
                    cap_alerted: [None; 2],
                    limited: [0; 4],
                },
            };
            self.by_hash.insert(hash, self.keys.len());
            self.by_name.insert(Rc::clone(&live.name), self.keys.len());
            self.keys.push(live);
        }
    }

    /// Find the key a request presents and take out of the head every credential header
    /// (`x-api-key`, `Authorization: Bearer`) whose value is a key of ours: the launcher sets
    /// both, and none of them may reach an upstream. A credential that is not ours stays (a
    /// pass-through endpoint needs the client's own). `today`: the UTC day number (for
    /// expiry); `cluster`: the one this proxy serves.
    pub fn identify(&self, head: &mut RequestHead, access_key: Option<&str>, today: i64, cluster: &str) -> Who {
        let mut presented = 0;
        let mut found: Option<Option<usize>> = None;
        let mut i = 0;
        while i < head.headers.len() {
            let h = &head.headers[i];
            let ours = match credential(&head.raw[h.name.clone()], &head.raw[h.value.clone()]) {
                None => None,
                Some(key) => {
                    presented = presented.max(key.len());
                    if access_key.is_some_and(|a| ct_eq(key, a.as_bytes())) {
                        Some(None)
                    } else if key.len() <= crate::store::keys::MAX_PRESENTED && !self.keys.is_empty() {
                        self.by_hash.get(&crate::store::bytes::sha256(key)).map(|&k| Some(k))
                    } else {
                        None
                    }
                }
            };
            match ours {
                Some(k) => {
                    head.headers.remove(i);
                    // The first key of ours decides, except that a person's own client key wins
                    // over the access key beside it (a settings.json `apiKeyHelper` written by
                    // `proxy use` sends the access key on every request): its limits apply.
                    match (found, k) {
                        (None, k) | (Some(None), k @ Some(_)) => found = Some(k),
                        _ => {}
                    }
                }
                None => i += 1,
            }
        }
        let Some(k) = found else { return Who::Nobody { presented } };
        let Some(k) = k else { return Who::AccessKey };
        let e = &self.keys[k].entry;
        if e.revoked() {
            return Who::Denied(401, format!("key '{}' was revoked", e.name));
        }
        if e.expired(today) {
            return Who::Denied(401, format!("key '{}' expired on {}", e.name, e.expires.as_deref().unwrap_or("?")));
        }
        if let Some(c) = e.cluster.as_deref().filter(|c| *c != cluster) {
            return Who::Denied(403, format!("key '{}' is for cluster '{c}'; this proxy serves '{cluster}'", e.name));
        }
        Who::Key(k)
    }

    /// The ticket of a request made with the access key (no limits).
    pub fn access_ticket(&mut self) -> KeyTicket {
        let name = Rc::clone(self.access.get_or_insert_with(|| Rc::from(ACCESS_KEY_NAME)));
        KeyTicket { name, _in_flight: None, budgeted: false, reserved: None }
    }

    /// The ticket of a request admitted for key `k`.
    pub fn ticket(&self, k: usize) -> KeyTicket {
        let key = &self.keys[k];
        KeyTicket {
            name: Rc::clone(&key.name),
            _in_flight: Some(InFlight::start(&key.in_flight)),
            budgeted: key.entry.limits.daily_tokens.is_some() || key.entry.limits.daily_usd.is_some(),
            reserved: None,
        }
    }
}

/// The header a person's qcc key travels in beside their own login (a pass-through cluster).
pub const QCC_KEY_HEADER: &[u8] = b"x-qcc-key";

/// The header the local CLI sends its control token in (`pidfile::PidInfo::control_token`).
pub const CONTROL_HEADER: &[u8] = b"x-qcc-control";

/// A fresh control token: 32 random bytes, hex.
pub fn control_token() -> crate::error::Result<String> {
    crate::store::bytes::random::<32>().map(|b| crate::store::bytes::hex(&b)).map_err(crate::error::Error::Failed)
}

/// Whether the head carries the control token (the admin routes only ask).
pub fn has_control_token(head: &RequestHead, token: &str) -> bool {
    head.headers().any(|(n, v)| n.eq_ignore_ascii_case(CONTROL_HEADER) && ct_eq(v.trim_ascii(), token.as_bytes()))
}

/// Whether a cap's alert is due (at most one an hour per key and cap); notes it sent.
pub fn cap_alert_due(key: &mut LiveKey, limit: Limit, now: Instant) -> bool {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
    let slot = &mut key.cap_alerted[usize::from(limit == Limit::Concurrent)];
    if slot.is_some_and(|t| now.saturating_duration_since(t) < EVERY) {
        return false;
    }
    *slot = Some(now);
    true
}

/// The key a credential header carries: `x-api-key: K` or `Authorization: Bearer K`.
fn credential<'a>(name: &[u8], value: &'a [u8]) -> Option<&'a [u8]> {
    // (`x-qcc-key`: a person's qcc key beside their own Claude login, for a pass-through
    // endpoint: `ANTHROPIC_CUSTOM_HEADERS`, set by `qcc use`/`qcc env`.)
    if name.eq_ignore_ascii_case(b"x-api-key") || name.eq_ignore_ascii_case(QCC_KEY_HEADER) {
        Some(value.trim_ascii())
    } else if name.eq_ignore_ascii_case(b"authorization")
        && value.len() > 7
        && value[..7].eq_ignore_ascii_case(b"bearer ")
    {
        Some(value[7..].trim_ascii())
    } else {
        None
    }
}

/// Constant-time comparison (for equal lengths; a length mismatch is not a secret worth keeping).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_request_head;
    use crate::store::keys::KeyChange;

    fn head(auth: &str) -> RequestHead {
        parse_request_head(format!("POST /v1/messages HTTP/1.1\r\nHost: h\r\n{auth}\r\nx-other: 1\r\n\r\n").as_bytes())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn keys_are_found_and_taken_out_of_the_request() {
        let mut file = KeyFile::default();
        let now = std::time::SystemTime::now();
        let bob = file.add("bob", &KeyChange::default(), now).unwrap();
        let old = file.add("old", &KeyChange::default(), now).unwrap();
        let gone = file.add("gone", &KeyChange { expires: Some(Some("2020-01-01".into())), ..Default::default() }, now);
        let other = file.add("ops", &KeyChange { cluster: Some(Some("ops".into())), ..Default::default() }, now);
        file.revoke("old", now).unwrap();
        let mut keys = ClientKeys::default();
        keys.apply(file.clone());
        let today = crate::store::keys::parse_date("2026-12-02").unwrap();
        let mut h = head(&format!("x-api-key: {bob}"));
        assert!(matches!(keys.identify(&mut h, Some("the-access-key"), today, "work"), Who::Key(0)));
        assert_eq!(h.headers().count(), 2, "the key header is gone");
        let mut h = head(&format!("Authorization: Bearer {bob}"));
        assert!(matches!(keys.identify(&mut h, None, today, "work"), Who::Key(0)));
        let mut h = head("Authorization: bearer the-access-key");
        assert!(matches!(keys.identify(&mut h, Some("the-access-key"), today, "work"), Who::AccessKey));
        let deny = |k: &str| match keys.identify(&mut head(&format!("x-api-key: {k}")), None, today, "work") {
            Who::Denied(s, m) => (s, m),
            _ => panic!("not denied"),
        };
        assert_eq!(deny(&old), (401, "key 'old' was revoked".into()));
        assert_eq!(deny(&gone.unwrap()), (401, "key 'gone' expired on 2020-01-01".into()));
        assert_eq!(deny(&other.unwrap()).0, 403);
        let long = format!("x-api-key: {}", "k".repeat(10_000));
        assert!(matches!(keys.identify(&mut head(&long), None, today, "work"), Who::Nobody { presented: 10_000 }));
        // A reload keeps the live counters of a key by name.
        let t = keys.ticket(0);
        keys.apply(file);
        assert_eq!(keys.iter().next().unwrap().in_flight.get(), 1);
        drop(t);
        assert_eq!(keys.iter().next().unwrap().in_flight.get(), 0);
    }
}
