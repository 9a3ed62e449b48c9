//! Refused requests: wrong access keys limited per client address, and the log lines of refused
//! requests (400/401/403/429) rate-limited, so a client in a loop can neither guess keys at
//! line speed nor fill the disk. Owned by the loop like everything else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Wrong keys a source may present within `WINDOW` before its wrong keys get a 429 instead of a
/// 401 until the window ends. A valid key is never refused: keys are 40 random characters, so
/// the lockout is there to keep a guesser's log lines and CPU in bounds, not to hide a hit.
const MAX_WRONG: u32 = 10;
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most (a spread-out guesser costs bounded memory; the oldest go).
const MAX_ADDRS: usize = 4096;
/// Refusal lines logged per second; the rest are counted and the count logged with the next.
const LINES_PER_SEC: u32 = 10;

#[derive(Debug, Default)]
pub struct Refusals {
    /// Address -> (wrong keys in its window, when the window started).
    wrong: HashMap<IpAddr, (u32, Instant)>,
    line_second: Option<Instant>,
    lines: u32,
    suppressed: u64,
}

impl Refusals {
    /// How long `ip` stays refused, when it sent too many wrong keys.
    pub fn locked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let &(n, since) = self.wrong.get(&source(ip))?;
        let left = (since + WINDOW).checked_duration_since(now)?;
        (n >= MAX_WRONG && !left.is_zero()).then_some(left)
    }

    /// `ip` sent a wrong or missing key.
    pub fn wrong_key(&mut self, ip: IpAddr, now: Instant) {
        let ip = source(ip);
        if self.wrong.len() >= MAX_ADDRS && !self.wrong.contains_key(&ip) {
            self.wrong.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if self.wrong.len() >= MAX_ADDRS {
                if let Some(oldest) = self.wrong.iter().min_by_key(|(_, (_, t))| *t).map(|(ip, _)| *ip) {
                    self.wrong.remove(&oldest);
                }
            }
        }
        let e = self.wrong.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= WINDOW {
            *e = (0, now);
        }
        e.0 = e.0.saturating_add(1);
    }

    /// Whether a refusal line may be logged now; `Some(n)`: yes, and `n` lines were suppressed
    /// since the last one logged (to be said with it).
    pub fn may_log(&mut self, now: Instant) -> Option<u64> {
        if self.line_second.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            self.line_second = Some(now);
            self.lines = 0;
        }
        if self.lines >= LINES_PER_SEC {
            self.suppressed += 1;
            return None;
        }
        self.lines += 1;
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Log lines suppressed so far and not yet reported (for the status).
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

/// The source an address counts as: an IPv6 host usually owns its whole /64 (counted as one),
/// and all of 127/8 (and `::1`, and IPv4-mapped loopback) is this machine.
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => source(IpAddr::V4(v4)),
            None if v6.is_loopback() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        IpAddr::V4(v4) if v4.is_loopback() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        v4 => v4,
    }
}

/// The note added to a logged line when others were suppressed before it.
pub fn suppressed_note(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} similar lines suppressed)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_locked_after_too_many_wrong_keys_and_freed_after_the_window() {
        let mut r = Refusals::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t = Instant::now();
        for _ in 0..MAX_WRONG - 1 {
            r.wrong_key(a, t);
        }
        assert!(r.locked(a, t).is_none());
        r.wrong_key(a, t);
        assert!(r.locked(a, t + Duration::from_secs(1)).is_some());
        assert!(r.locked(b, t).is_none(), "other addresses are not affected");
        assert!(r.locked(a, t + WINDOW).is_none());
        r.wrong_key(a, t + WINDOW);
        assert!(r.locked(a, t + WINDOW).is_none(), "a new window starts afresh");
    }

    #[test]
    fn loopback_is_one_source_and_ipv6_counts_by_64() {
        let mut r = Refusals::default();
        let t = Instant::now();
        for i in 0..MAX_WRONG {
            r.wrong_key(IpAddr::from([127, 0, 0, 1 + i as u8]), t);
        }
        assert!(r.locked("127.9.9.9".parse().unwrap(), t).is_some());
        assert!(r.locked("::1".parse().unwrap(), t).is_some());
        assert!(r.locked("::ffff:127.0.0.1".parse().unwrap(), t).is_some());
        for i in 0..MAX_WRONG {
            r.wrong_key(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i as u16]), t);
        }
        assert!(r.locked("2001:db8:0:1:ffff::1".parse().unwrap(), t).is_some());
        assert!(r.locked("2001:db8:0:2::1".parse().unwrap(), t).is_none(), "another /64");
    }

    #[test]
    fn memory_is_bounded() {
        let mut r = Refusals::default();
        let t = Instant::now();
        for i in 0..(MAX_ADDRS as u32 + 500) {
            r.wrong_key(IpAddr::from(i.to_be_bytes()), t);
        }
        assert!(r.wrong.len() <= MAX_ADDRS);
    }

    #[test]
    fn lines_are_rate_limited_and_the_rest_counted() {
        let mut r = Refusals::default();
        let t = Instant::now();
        let logged = (0..100).filter(|_| r.may_log(t).is_some()).count();
        assert_eq!(logged, LINES_PER_SEC as usize);
        assert_eq!(r.suppressed(), 100 - LINES_PER_SEC as u64);
        assert_eq!(r.may_log(t + Duration::from_secs(1)), Some(100 - LINES_PER_SEC as u64));
    }
}
