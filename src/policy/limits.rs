//! A client key's limits, decided before a request touches an upstream: daily token and dollar
//! budgets (counted from what upstreams reported, reset at 00:00 UTC), requests per minute (a
//! sliding window) and requests in progress. Pure: callers pass the clock and the day's counts.

use std::collections::VecDeque;

use std::time::{Duration, Instant};

use crate::store::keys::Limits;

/// Which limit refused a request (the `budget_reached` alert names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    DailyTokens,
    DailyUsd,
    Rpm,
    Concurrent,
}

impl Limit {
    pub const ALL: [Limit; 4] = [Limit::DailyTokens, Limit::DailyUsd, Limit::Rpm, Limit::Concurrent];

    pub fn as_str(self) -> &'static str {
        match self {
            Limit::DailyTokens => "daily_tokens",
            Limit::DailyUsd => "daily_usd",
            Limit::Rpm => "rpm",
            Limit::Concurrent => "concurrent",
        }
    }

    /// Its place in `ALL` (and in per-limit counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Budgets last the day; the caps free up within a minute.
    pub fn is_budget(self) -> bool {
        matches!(self, Limit::DailyTokens | Limit::DailyUsd)
    }
}

/// A 429 to answer: which limit, the message (Anthropic's `rate_limit_error`), `retry-after`.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub limit: Limit,
    pub message: String,
    pub retry_after_secs: u64,
}

/// What a key has used today (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Used {
    pub tokens: u64,
    pub usd: f64,
}

impl From<&crate::store::usage::KeyCounts> for Used {
    /// A key's day as the usage book counts it.
    fn from(c: &crate::store::usage::KeyCounts) -> Used {
        Used { tokens: c.tokens(), usd: c.cost_usd }
    }
}

/// Seconds from unix time `wall_secs` to the next UTC midnight, when the day's budgets reset.
pub fn secs_to_midnight(wall_secs: u64) -> u64 {
    86_400 - wall_secs % 86_400
}

impl Used {
    /// This day's use with what requests in progress have reserved (`Reserved`).
    pub fn with(self, reserved: Used) -> Used {
        Used { tokens: self.tokens.saturating_add(reserved.tokens), usd: self.usd + reserved.usd }
    }
}

/// What the requests of a key in progress have reserved against its budgets, summed (one cell
/// per key, shared by their `Reservation`s).
pub type Reserved = std::rc::Rc<std::cell::Cell<Used>>;

/// One request's reservation: its estimate (its `max_tokens`, its input estimated from its
/// size, their price), held against the key's budgets while it runs and given back when it
/// ends (dropped), when what it really used has been counted. With reservations, requests that
/// start together cannot all pass a budget that only one of them fits: the budget is overshot
/// by at most the one request admitted while there was room.
#[derive(Debug)]
pub struct Reservation {
    cell: Reserved,
    amount: Used,
}

impl Reservation {
    pub fn hold(cell: &Reserved, amount: Used) -> Reservation {
        cell.set(cell.get().with(amount));
        Reservation { cell: std::rc::Rc::clone(cell), amount }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let now = self.cell.get();
        self.cell.set(Used {
            tokens: now.tokens.saturating_sub(self.amount.tokens),
            usd: (now.usd - self.amount.usd).max(0.0),
        });
    }
}

/// Bytes of a request body counted as one input token in a reservation (an overestimate for
/// JSON, on purpose), and the output reserved for a request that names no `max_tokens`.
pub const BYTES_PER_TOKEN: u64 = 4;
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Whether a key with `limits` may start one more request with `used` (counted and reserved
/// together) against its budgets: `Err` names the budget already used up.
pub fn budget_room(name: &str, limits: &Limits, used: Used, secs_to_midnight: u64) -> Result<(), Refusal> {
    for (limit, full) in [
        (Limit::DailyTokens, limits.daily_tokens.is_some_and(|max| used.tokens >= max)),
        (Limit::DailyUsd, limits.daily_usd.is_some_and(|max| used.usd >= max)),
    ] {
        if full {
            return Err(Refusal {
                limit,
                message: budget_message(name, limit, limits),
                retry_after_secs: secs_to_midnight.max(1),
            });
        }
    }
    Ok(())
}

/// The starts of a key's requests in the last minute (at most `rpm` kept).
#[derive(Debug, Default)]
pub struct Window(VecDeque<Instant>);

const MINUTE: Duration = Duration::from_secs(60);

impl Window {
    fn admit(&mut self, rpm: u32, now: Instant) -> Result<(), Duration> {
        while self.0.front().is_some_and(|t| now.saturating_duration_since(*t) >= MINUTE) {
            self.0.pop_front();
        }
        if self.0.len() >= rpm as usize {
            let oldest = self.0.front().copied().unwrap_or(now);
            return Err(MINUTE.saturating_sub(now.saturating_duration_since(oldest)));
        }
        self.0.push_back(now);
        Ok(())
    }

    /// Requests started in the last minute.
    pub fn count(&self, now: Instant) -> usize {
        self.0.iter().filter(|t| now.saturating_duration_since(**t) < MINUTE).count()
    }
}

/// What a key reached when its budget `limit` (of `limits`) is used up.
fn budget_message(name: &str, limit: Limit, limits: &Limits) -> String {
    let what = match limit {
        Limit::DailyTokens => format!("daily token budget of {}", limits.daily_tokens.unwrap_or(0)),
        _ => format!("daily budget of ${:.2}", limits.daily_usd.unwrap_or(0.0)),
    };
    format!("key '{name}': {what} reached, resets at 00:00 UTC")
}

/// The budgets one answer took the key's day past (`before` under, `after` at or over), each
/// with its message: what alerts once, when it happens.
pub fn crossed(name: &str, limits: &Limits, before: Used, after: Used) -> Vec<(Limit, String)> {
    let tokens = limits.daily_tokens.is_some_and(|m| before.tokens < m && after.tokens >= m);
    let usd = limits.daily_usd.is_some_and(|m| before.usd < m && after.usd >= m);
    [(Limit::DailyTokens, tokens), (Limit::DailyUsd, usd)]
        .into_iter()
        .filter(|(_, hit)| *hit)
        .map(|(l, _)| (l, budget_message(name, l, limits)))
        .collect()
}

/// Whether key `name` may start a request now. `secs_to_midnight`: until the budgets reset.
/// A request admitted is counted in `window` (the caller counts it in progress).
pub fn admit(
    name: &str,
    limits: &Limits,
    used: Used,
    in_flight: u32,
    window: &mut Window,
    secs_to_midnight: u64,
    now: Instant,
) -> Result<(), Refusal> {
    budget_room(name, limits, used, secs_to_midnight)?;
    if let Some(max) = limits.concurrent.filter(|max| in_flight >= *max) {
        return Err(Refusal {
            limit: Limit::Concurrent,
            message: format!("key '{name}': {max} requests in progress at once is its limit"),
            retry_after_secs: 1,
        });
    }
    if let Some(rpm) = limits.rpm {
        if let Err(wait) = window.admit(rpm, now) {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(Refusal {
                limit: Limit::Rpm,
                message: format!("key '{name}': {rpm} requests per minute reached, try again in {secs} s"),
                retry_after_secs: secs.max(1),
            });
        }
    }
    Ok(())
}

/// The estimate of a request's tokens (input from its body's size, output its `max_tokens`) and,
/// when `model` is priced, their cost. Both are read with its route (`route::look`).
pub fn estimate(
    body_len: usize,
    max_tokens: Option<u64>,
    model: Option<&str>,
    prices: &crate::store::prices::PriceTable,
) -> Used {
    let input = body_len as u64 / BYTES_PER_TOKEN;
    let output = max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let counts = crate::store::usage::Counts { input_tokens: input, output_tokens: output, ..Default::default() };
    let usd = model.and_then(|m| prices.cost(m, &counts)).unwrap_or(0.0);
    Used { tokens: input.saturating_add(output), usd }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_caps_and_the_window() {
        let t0 = Instant::now();
        let mut w = Window::default();
        let limits = Limits { daily_tokens: Some(12), daily_usd: Some(1.0), rpm: Some(2), concurrent: Some(1) };
        let ok = Used { tokens: 11, usd: 0.5 };
        assert_eq!(admit("bob", &limits, ok, 0, &mut w, 100, t0), Ok(()));
        let r = admit("bob", &limits, Used { tokens: 12, usd: 0.0 }, 0, &mut w, 100, t0).unwrap_err();
        assert_eq!(r.message, "key 'bob': daily token budget of 12 reached, resets at 00:00 UTC");
        assert_eq!((r.limit, r.retry_after_secs), (Limit::DailyTokens, 100));
        let r = admit("bob", &limits, Used { tokens: 0, usd: 1.0 }, 0, &mut w, 100, t0).unwrap_err();
        assert_eq!(r.limit, Limit::DailyUsd);
        assert!(r.message.contains("$1.00"));
        // A refusal by the concurrency cap is not counted in the minute.
        assert_eq!(admit("bob", &limits, ok, 1, &mut w, 100, t0).unwrap_err().limit, Limit::Concurrent);
        assert_eq!(w.count(t0), 1);
        assert_eq!(admit("bob", &limits, ok, 0, &mut w, 100, t0 + Duration::from_secs(10)), Ok(()));
        let r = admit("bob", &limits, ok, 0, &mut w, 100, t0 + Duration::from_secs(20)).unwrap_err();
        assert_eq!((r.limit, r.retry_after_secs), (Limit::Rpm, 40));
        assert_eq!(admit("bob", &limits, ok, 0, &mut w, 100, t0 + Duration::from_secs(60)), Ok(()));
        assert_eq!(admit("bob", &Limits::default(), Used { tokens: u64::MAX, usd: 1e9 }, 999, &mut w, 1, t0), Ok(()));
        assert!(Limit::ALL.iter().enumerate().all(|(i, l)| l.index() == i));
        // Crossing: said by the answer that takes the day past a budget, not after.
        let c = crossed("bob", &limits, Used { tokens: 8, usd: 0.9 }, Used { tokens: 16, usd: 1.2 });
        assert_eq!(c.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [Limit::DailyTokens, Limit::DailyUsd]);
        assert_eq!(c[0].1, "key 'bob': daily token budget of 12 reached, resets at 00:00 UTC");
        assert!(crossed("bob", &limits, Used { tokens: 16, usd: 1.2 }, Used { tokens: 24, usd: 1.5 }).is_empty());
    }

    #[test]
    fn reservations_count_while_held_and_are_given_back() {
        let cell = Reserved::default();
        let limits = Limits { daily_tokens: Some(100), ..Default::default() };
        let a = Reservation::hold(&cell, Used { tokens: 70, usd: 0.5 });
        assert_eq!(budget_room("bob", &limits, Used { tokens: 20, usd: 0.0 }.with(cell.get()), 9), Ok(()));
        let b = Reservation::hold(&cell, Used { tokens: 70, usd: 0.5 });
        let r = budget_room("bob", &limits, Used { tokens: 0, usd: 0.0 }.with(cell.get()), 9).unwrap_err();
        assert_eq!(r.limit, Limit::DailyTokens, "a third waits: the budget is overshot by one request at most");
        drop(a);
        drop(b);
        assert_eq!(cell.get(), Used::default());
    }
}

#[cfg(test)]
mod estimate_tests {
    use super::*;

    #[test]
    fn an_estimate_is_max_tokens_and_the_size_and_their_price() {
        let prices = crate::store::prices::PriceTable::default();
        let body =
            br#"{"model":"claude-sonnet-4-5","max_tokens":50,"messages":[{"role":"user","content":"hello there"}]}"#;
        let read = |body: &[u8]| {
            let l = crate::policy::route::look(
                &[],
                body,
                crate::policy::route::Want { estimate: true, ..Default::default() },
            );
            estimate(body.len(), l.max_tokens, l.model.as_ref().map(|m| m.name.as_str()), &prices)
        };
        let e = read(body);
        assert_eq!(e.tokens, 50 + body.len() as u64 / 4);
        assert!(e.usd > 0.0, "a priced model");
        let e = read(br#"{"max_tokens":"many","model":"claude-sonnet-4-5"}"#);
        assert_eq!(e.tokens, DEFAULT_MAX_TOKENS + 12, "a max_tokens that is not a count: the default");
        assert!(e.usd > 0.0, "the model still read");
        let e = read(b"not json");
        assert_eq!(e.tokens, DEFAULT_MAX_TOKENS + 2);
        assert_eq!(e.usd, 0.0);
    }
}
