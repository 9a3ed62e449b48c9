//! Headroom: what an endpoint's own answers say is left of its rate limits. Every Anthropic
//! answer (and many relays') carries `anthropic-ratelimit-{requests,tokens,input-tokens,
//! output-tokens}-{limit,remaining,reset}`; an endpoint whose requests or tokens are used up is
//! skipped until the reset (or until an answer says otherwise), before it would answer 429, and
//! one close to its limit gets proportionally less traffic from `weighted` and `round_robin`.
//! Callers pass the clocks (`now`, `wall`), as for every policy type.

use std::time::{Duration, Instant, SystemTime};

/// The dimensions an answer may report.
pub const DIMS: [&str; 4] = ["requests", "tokens", "input-tokens", "output-tokens"];

/// One dimension's window as last reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset: Option<SystemTime>,
}

#[derive(Debug, Clone, Default)]
pub struct Headroom {
    /// By `DIMS` index.
    pub dims: [Option<Window>; 4],
    /// Used up until then (the latest reset of an exhausted dimension): not picked before.
    pub blocked_until: Option<Instant>,
}

/// The longest a reported reset keeps an endpoint out (a clock far off must not park it).
const MAX_BLOCK: Duration = Duration::from_secs(3600);

impl Headroom {
    /// Read an answer's headers. An answer without any rate-limit header changes nothing.
    /// (`wall` is read only when the answer has such headers: this runs for every answer.)
    pub fn update<'a>(
        &mut self,
        headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        now: Instant,
        wall: impl FnOnce() -> SystemTime,
    ) {
        let mut fresh: [Option<Window>; 4] = [None; 4];
        // OpenAI-format providers say when a window resets as a time from now ("6m0s").
        let mut resets_in: [Option<Duration>; 4] = [None; 4];
        let mut any = false;
        for (name, value) in headers {
            let Some((d, field, relative)) = rate_header(name) else { continue };
            let Ok(v) = std::str::from_utf8(value) else { continue };
            let w = fresh[d].get_or_insert_with(Window::default);
            // (Compared in place: no lowercased copy of each header name.)
            if field.eq_ignore_ascii_case(b"limit") {
                w.limit = v.trim().parse().ok();
            } else if field.eq_ignore_ascii_case(b"remaining") {
                w.remaining = v.trim().parse().ok();
            } else if field.eq_ignore_ascii_case(b"reset") && relative {
                resets_in[d] = parse_duration(v.trim());
            } else if field.eq_ignore_ascii_case(b"reset") {
                w.reset = crate::store::timefmt::parse_rfc3339(v);
            } else {
                continue;
            }
            any = true;
        }
        if !any {
            return;
        }
        let wall = wall();
        for (d, w) in fresh.iter_mut().enumerate() {
            if let (Some(w), Some(ahead)) = (w.as_mut(), resets_in[d]) {
                w.reset = Some(wall + ahead);
            }
        }
        for (d, w) in fresh.into_iter().enumerate() {
            if w.is_some() {
                self.dims[d] = w;
            }
        }
        // Used up: a dimension at 0 whose reset is ahead. (Input and output tokens count as
        // tokens: any of them exhausted stops the next request.)
        self.blocked_until = self
            .dims
            .iter()
            .flatten()
            .filter(|w| w.remaining == Some(0))
            .filter_map(|w| w.reset?.duration_since(wall).ok())
            .max()
            .map(|ahead| now + ahead.min(MAX_BLOCK));
    }

    /// Whether the endpoint is used up at `now`.
    pub fn blocked(&self, now: Instant) -> bool {
        self.blocked_until.is_some_and(|t| now < t)
    }

    /// What is left, as a share of the limit, of the tightest dimension reported (per mille;
    /// 1000 when nothing is known).
    pub fn share(&self) -> u16 {
        self.dims
            .iter()
            .flatten()
            .filter_map(|w| Some((w.remaining?, w.limit?)))
            .filter(|(_, l)| *l > 0)
            // (in u128: a reported count near the top of u64 must not overflow)
            .map(|(r, l)| (u128::from(r.min(l)) * 1000 / u128::from(l)) as u16)
            .min()
            .unwrap_or(1000)
    }
}

/// A rate-limit header's dimension (by `DIMS` index) and field (`limit`, `remaining`,
/// `reset`): Anthropic's `anthropic-ratelimit-{dim}-{field}`, or OpenAI's
/// `x-ratelimit-{field}-{dim}` (requests and tokens; `true`: its reset is a time from now).
fn rate_header(name: &[u8]) -> Option<(usize, &[u8], bool)> {
    let after = |prefix: &[u8]| {
        (name.len() > prefix.len() && crate::http::starts_with_ignore_case(name, prefix)).then(|| &name[prefix.len()..])
    };
    let dim_of = |s: &[u8]| DIMS.iter().position(|d| d.as_bytes().eq_ignore_ascii_case(s));
    if let Some(rest) = after(b"anthropic-ratelimit-") {
        return DIMS.iter().enumerate().find_map(|(i, dim)| {
            let dim = dim.as_bytes();
            (rest.len() > dim.len() + 1 && rest[..dim.len()].eq_ignore_ascii_case(dim) && rest[dim.len()] == b'-')
                .then(|| (i, &rest[dim.len() + 1..], false))
        });
    }
    let rest = after(b"x-ratelimit-")?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    let d = dim_of(&rest[dash + 1..]).filter(|&d| d < 2)?; // requests, tokens
    Some((d, &rest[..dash], true))
}

/// A Go-style duration as OpenAI sends resets: "1s", "6m0s", "20ms", "1h2m3.5s"; or bare seconds.
fn parse_duration(s: &str) -> Option<Duration> {
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).filter(|&e| e > 0)?;
        let n: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        total += n * match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_headers_and_their_relative_resets() {
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut hr = Headroom::default();
        let a = h(&[
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1m30s"),
            ("x-ratelimit-limit-tokens", "1000"),
            ("x-ratelimit-remaining-tokens", "500"),
            ("x-ratelimit-reset-tokens", "20ms"),
        ]);
        hr.update(a.iter().map(|(n, v)| (n.as_slice(), v.as_slice())), now, || wall);
        assert!(hr.blocked(now + Duration::from_secs(89)) && !hr.blocked(now + Duration::from_secs(90)));
        assert_eq!(hr.share(), 0);
        assert_eq!(parse_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_duration("1h2m3.5s"), Some(Duration::from_secs_f64(3723.5)));
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn counts_near_the_top_of_u64_do_not_overflow() {
        let mut hr = Headroom::default();
        let max = u64::MAX.to_string();
        let heads = h(&[("anthropic-ratelimit-tokens-limit", &max), ("anthropic-ratelimit-tokens-remaining", &max)]);
        hr.update(heads.iter().map(|(n, v)| (n.as_slice(), v.as_slice())), Instant::now(), SystemTime::now);
        assert_eq!(hr.share(), 1000);
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }

    #[test]
    fn used_up_until_the_reset_and_proportional_before() {
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_760_695_500); // 2025-10-17T10:05:00Z
        let mut hr = Headroom::default();
        let a = h(&[
            ("Anthropic-RateLimit-Requests-Limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "10"),
            ("anthropic-ratelimit-requests-reset", "2025-10-17T10:06:00Z"),
            ("content-type", "application/json"),
        ]);
        hr.update(a.iter().map(|(n, v)| (n.as_slice(), v.as_slice())), now, || wall);
        assert!(!hr.blocked(now));
        assert_eq!(hr.share(), 200);
        let b = h(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2025-10-17T10:06:00Z"),
        ]);
        hr.update(b.iter().map(|(n, v)| (n.as_slice(), v.as_slice())), now, || wall);
        assert!(hr.blocked(now + Duration::from_secs(59)));
        assert!(!hr.blocked(now + Duration::from_secs(60)), "back at the reset");
        // An answer without the headers says nothing; one with room again unblocks.
        hr.update(std::iter::empty(), now, || wall);
        assert!(hr.blocked(now));
        let c = h(&[("anthropic-ratelimit-requests-remaining", "3")]);
        hr.update(c.iter().map(|(n, v)| (n.as_slice(), v.as_slice())), now, || wall);
        assert!(!hr.blocked(now));
        // Garbage is ignored, never a block.
        let mut g = Headroom::default();
        let d = h(&[("anthropic-ratelimit-tokens-remaining", "0"), ("anthropic-ratelimit-tokens-reset", "soon")]);
        g.update(d.iter().map(|(n, v)| (n.as_slice(), v.as_slice())), now, || wall);
        assert!(!g.blocked(now));
        assert_eq!(Headroom::default().share(), 1000);
    }
}
