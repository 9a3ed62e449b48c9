//! Generated-input tests for the three parsers (request head, response head, chunked decoder).
//!
//! Seeds are mutated with a deterministic xorshift generator; every input must parse without a
//! panic, and feeding it in two pieces must agree with feeding it whole. `cargo test` runs
//! 20,000 inputs per parser; `scripts/fuzz.sh SECS` runs them for a bounded time instead
//! (`QCC_FUZZ_SECS`, with a random seed printed so a failure can be replayed with `QCC_FUZZ_SEED`).
//! Crashes found are kept below as regression cases.

use std::time::{Duration, Instant};

use super::chunked::ChunkedDecoder;
use super::{parse_request_head, parse_response_head};

const REQUEST_SEEDS: &[&[u8]] = &[
    b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"PUT /x?y=1 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
];
const RESPONSE_SEEDS: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 429 Too Many\r\nRetry-After: 30\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.0 204 No Content\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
];
const CHUNKED_SEEDS: &[&[u8]] = &[
    b"5\r\nhello\r\n0\r\n\r\n",
    b"a;ext=1\r\n0123456789\r\n0\r\ntrailer: x\r\n\r\n",
    b"ffffffffffffffff\r\n",
    b"0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
];
/// Inputs that once broke something (none so far from the bounded runs).
const REGRESSIONS: &[&[u8]] = &[b"\r\n\r\n", b"0\r\n", b"HTTP/1.1 \r\n\r\n", b"GET  HTTP/1.1\r\n\r\n"];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] =
    &[b"\r\n", b"\n", b":", b" ", b";", b",", b"0", b"f", b"chunked", b"content-length", b"\0", b"\xff"];

fn mutate(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if at < v.len() => {
                let end = (at + 1 + rng.below(8)).min(v.len());
                v.drain(at..end);
            }
            3 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(at..at, piece.iter().copied());
            }
            _ => {
                let other = seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                v.splice(at..at, other[from..].iter().copied().take(16));
            }
        }
    }
    v
}

/// Whole vs split must agree; nothing may panic.
fn check_request(input: &[u8], split: usize) {
    let whole = parse_request_head(input).map(|o| o.map(|h| h.raw.len()));
    if let Ok(Some(n)) = whole {
        // A prefix that holds the whole head parses the same; a shorter one is incomplete or an
        // error that the full input also reports.
        let part = parse_request_head(&input[..split.max(n).min(input.len())]).map(|o| o.map(|h| h.raw.len()));
        assert_eq!(part, Ok(Some(n)), "{input:?}");
    }
    let _ = parse_request_head(&input[..split]);
    // Fed a few bytes at a time through a connection's scan: the same answer as all at once.
    let mut scan = super::HeadScan::default();
    let step = 1 + split % 7;
    let mut fed = 0;
    let inc = loop {
        fed = (fed + step).min(input.len());
        let r = scan.parse(&input[..fed], parse_request_head).map(|o| o.map(|h| h.raw.len()));
        if fed == input.len() || !matches!(r, Ok(None)) {
            break r;
        }
    };
    // A complete head is found the same; an error found early is the whole input's error too.
    match (&whole, &inc) {
        (Ok(Some(_)), _) => assert_eq!(inc, whole, "{input:?}"),
        (_, Err(_)) => assert!(whole.is_err(), "{input:?}"),
        _ => {}
    }
}

fn check_response(input: &[u8], split: usize) {
    let whole = parse_response_head(input, false).map(|o| o.map(|h| (h.raw.len(), h.status, h.framing)));
    if let Ok(Some((n, _, _))) = whole {
        let part = parse_response_head(&input[..split.max(n).min(input.len())], false)
            .map(|o| o.map(|h| (h.raw.len(), h.status, h.framing)));
        assert_eq!(part, whole, "{input:?}");
    }
    let _ = parse_response_head(&input[..split], true);
}

fn check_chunked(input: &[u8], split: usize) {
    let mut whole = ChunkedDecoder::new();
    let w = whole.feed(input).map(|n| (n, whole.is_done()));
    let mut d = ChunkedDecoder::new();
    let s = d.feed(&input[..split]).and_then(|a| {
        if a < split {
            Ok((a, d.is_done()))
        } else {
            d.feed(&input[split..]).map(|b| (a + b, d.is_done()))
        }
    });
    assert_eq!(s, w, "{input:?} split at {split}");
}

fn run(iterations: u64, budget: Option<Duration>, seed: u64) -> u64 {
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    let mut done = 0;
    while done < iterations && budget.is_none_or(|b| started.elapsed() < b) {
        let r = mutate(&mut rng, REQUEST_SEEDS);
        check_request(&r, rng.below(r.len() + 1));
        let r = mutate(&mut rng, RESPONSE_SEEDS);
        check_response(&r, rng.below(r.len() + 1));
        let c = mutate(&mut rng, CHUNKED_SEEDS);
        check_chunked(&c, rng.below(c.len() + 1));
        done += 1;
    }
    done
}

#[test]
fn regressions_do_not_panic() {
    for input in REGRESSIONS {
        for split in 0..=input.len() {
            check_request(input, split);
            check_response(input, split);
            check_chunked(input, split);
        }
    }
}

#[test]
fn generated_inputs() {
    let secs = std::env::var("QCC_FUZZ_SECS").ok().and_then(|s| s.parse::<u64>().ok());
    let seed = std::env::var("QCC_FUZZ_SEED").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or_else(|| {
        if secs.is_some() {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
                ^ 0x5eed
        } else {
            0x5eed
        }
    });
    let (iterations, budget) = match secs {
        Some(s) => (u64::MAX, Some(Duration::from_secs(s))),
        None => (20_000, None),
    };
    let done = run(iterations, budget, seed);
    eprintln!("fuzz: {done} inputs per parser, seed {seed}");
    // A fixed count runs to the end; a time budget must have run more than a token amount.
    match budget {
        None => assert_eq!(done, iterations),
        Some(_) => assert!(done >= 1000, "only {done} inputs in the time budget"),
    }
}
