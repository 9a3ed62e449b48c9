//! Endpoint selection by a cluster's `Strategy` (`store/cluster.rs`). Pure: no clock, no global
//! RNG (the seed is injected).

use crate::store::cluster::Strategy;

/// What the balancer needs to know about one endpoint of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub priority: u32,
    pub weight: u32,
    /// What its answers say is left of its rate limit, per mille (1000: unknown or all).
    pub share: u16,
    pub in_flight: u32,
    pub usable: bool,
    /// Already tried by the current request.
    pub tried: bool,
    /// The current request may have reached it (bytes were sent): never sent there again.
    pub reached: bool,
}

pub struct Balancer {
    strategy: Strategy,
    rr_next: usize,
    rng: u64,
    /// Reused for every pick: no allocation per request.
    pool: Vec<usize>,
    ids: Vec<usize>,
    list: Vec<Candidate>,
}

impl Balancer {
    pub fn new(strategy: Strategy, seed: u64) -> Balancer {
        Balancer {
            strategy,
            rr_next: 0,
            rng: if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed },
            pool: Vec::new(),
            ids: Vec::new(),
            list: Vec::new(),
        }
    }

    /// A reload changed the cluster's strategy.
    pub fn set_strategy(&mut self, s: Strategy) {
        self.strategy = s;
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// xorshift64*: plenty for spreading load, and reproducible in tests.
    fn next_u64(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `pick` over `(endpoint index, candidate)` pairs; the endpoint index of the choice.
    pub fn choose(&mut self, candidates: impl Iterator<Item = (usize, Candidate)>) -> Option<usize> {
        let (mut ids, mut list) = (std::mem::take(&mut self.ids), std::mem::take(&mut self.list));
        ids.clear();
        list.clear();
        for (i, c) in candidates {
            ids.push(i);
            list.push(c);
        }
        let chosen = self.pick(&list).map(|p| ids[p]);
        (self.ids, self.list) = (ids, list);
        chosen
    }

    /// Index into `candidates` of the endpoint to try next, or None when there is none.
    /// Order of preference: usable and untried (by strategy); else untried in priority order
    /// (health may be stale); else one the request provably never reached (its connect failed),
    /// in priority order. A request is never sent twice to one endpoint: a Messages request is
    /// not idempotent in cost, and a timed-out generation may still be running and billed.
    pub fn pick(&mut self, candidates: &[Candidate]) -> Option<usize> {
        let mut tier1 = std::mem::take(&mut self.pool);
        tier1.clear();
        tier1.extend((0..candidates.len()).filter(|&i| candidates[i].usable && !candidates[i].tried));
        let picked = if tier1.is_empty() { None } else { Some(self.by_strategy(candidates, &tier1)) };
        self.pool = tier1;
        if picked.is_some() {
            return picked;
        }
        let by_priority = |pool: &mut dyn Iterator<Item = usize>| pool.min_by_key(|&i| (candidates[i].priority, i));
        by_priority(&mut (0..candidates.len()).filter(|&i| !candidates[i].tried))
            .or_else(|| by_priority(&mut (0..candidates.len()).filter(|&i| !candidates[i].reached)))
    }

    fn by_strategy(&mut self, c: &[Candidate], pool: &[usize]) -> usize {
        match self.strategy {
            Strategy::PriorityFailover => *pool.iter().min_by_key(|&&i| (c[i].priority, i)).unwrap_or(&pool[0]),
            Strategy::LeastConnections => {
                *pool.iter().min_by_key(|&&i| (c[i].in_flight, c[i].priority, i)).unwrap_or(&pool[0])
            }
            Strategy::RoundRobin => {
                // An endpoint close to its limit takes its turn only in proportion to what is
                // left (the next in the rotation gets the rest); every turn goes somewhere.
                for _ in 0..pool.len() {
                    let i = pool[self.rr_next % pool.len()];
                    self.rr_next = self.rr_next.wrapping_add(1);
                    if c[i].share >= 1000 || self.next_u64() % 1000 < u64::from(c[i].share) {
                        return i;
                    }
                }
                *pool.iter().max_by_key(|&&i| (c[i].share, std::cmp::Reverse(i))).unwrap_or(&pool[0])
            }
            Strategy::Random => pool[(self.next_u64() % pool.len() as u64) as usize],
            Strategy::Weighted => {
                // The weight, times what is left of the endpoint's rate limit.
                let w =
                    |i: usize| (u64::from(c[i].weight) * u64::from(c[i].share) / 1000).max(u64::from(c[i].weight > 0));
                let total: u64 = pool.iter().map(|&i| w(i)).sum();
                if total == 0 {
                    return pool[(self.next_u64() % pool.len() as u64) as usize];
                }
                let mut r = self.next_u64() % total;
                for &i in pool {
                    let w = w(i);
                    if r < w {
                        return i;
                    }
                    r -= w;
                }
                pool[pool.len() - 1]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(priority: u32, weight: u32) -> Candidate {
        Candidate { priority, weight, share: 1000, in_flight: 0, usable: true, tried: false, reached: false }
    }

    #[test]
    fn parse_round_trips() {
        for s in Strategy::ALL {
            assert_eq!(Strategy::parse(s.as_str()), Some(s));
        }
        assert_eq!(Strategy::parse("fastest"), None);
    }

    #[test]
    fn choose_answers_with_the_endpoint_index() {
        // Endpoints 0 and 2 are candidates (1 is disabled and left out by the caller).
        let mut b = Balancer::new(Strategy::PriorityFailover, 1);
        assert_eq!(b.choose([(0, cand(2, 1)), (2, cand(1, 1))].into_iter()), Some(2));
        assert_eq!(b.choose([(0, cand(2, 1))].into_iter()), Some(0), "buffers reused, not stale");
        assert_eq!(b.choose(std::iter::empty()), None);
    }

    #[test]
    fn priority_failover_prefers_lowest_usable_untried() {
        let mut b = Balancer::new(Strategy::PriorityFailover, 1);
        let mut c = vec![cand(2, 1), cand(1, 1), cand(3, 1)];
        assert_eq!(b.pick(&c), Some(1));
        c[1].tried = true;
        assert_eq!(b.pick(&c), Some(0));
        c[0].usable = false;
        assert_eq!(b.pick(&c), Some(2));
        c[2].tried = true;
        assert_eq!(b.pick(&c), Some(0), "tier 2: untried though unusable");
        c[0].tried = true;
        assert_eq!(b.pick(&c), Some(1), "tier 3: tried, never reached, by priority");
        c[1].reached = true;
        assert_eq!(b.pick(&c), Some(0));
        c[0].reached = true;
        c[2].reached = true;
        assert_eq!(b.pick(&c), None, "reached everywhere: no second copy");
        assert_eq!(b.pick(&[]), None);
    }

    #[test]
    fn weighted_follows_weights() {
        let mut b = Balancer::new(Strategy::Weighted, 42);
        let c = [cand(1, 300), cand(1, 100), cand(1, 0)];
        let mut counts = [0; 3];
        for _ in 0..10_000 {
            counts[b.pick(&c).unwrap()] += 1;
        }
        assert!((7000..8000).contains(&counts[0]), "{counts:?}");
        assert_eq!(counts[2], 0);
    }

    #[test]
    fn round_robin_and_random_spread() {
        let mut b = Balancer::new(Strategy::RoundRobin, 1);
        let c = [cand(1, 1), cand(2, 1), cand(3, 1)];
        let picks: Vec<usize> = (0..6).map(|_| b.pick(&c).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        let mut r = Balancer::new(Strategy::Random, 7);
        let mut seen = [0; 3];
        for _ in 0..3000 {
            seen[r.pick(&c).unwrap()] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn least_connections_counts_in_flight() {
        let mut b = Balancer::new(Strategy::LeastConnections, 1);
        let mut c = [cand(1, 1), cand(2, 1)];
        c[0].in_flight = 3;
        c[1].in_flight = 1;
        assert_eq!(b.pick(&c), Some(1));
        c[1].in_flight = 3;
        assert_eq!(b.pick(&c), Some(0), "tie broken by priority");
    }
}
