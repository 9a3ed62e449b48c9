//! Endpoint selection strategies. Pure: no clock, no global RNG (the seed is injected).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    PriorityFailover,
    Weighted,
    RoundRobin,
    Random,
    LeastConnections,
}

impl Strategy {
    /// Parses "priority_failover", "weighted", "round_robin", "random", "least_connections".
    pub fn parse(s: &str) -> Option<Strategy> {
        let _ = s;
        todo!()
    }
    pub fn as_str(self) -> &'static str {
        todo!()
    }
}

/// What the balancer needs to know about one endpoint of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub priority: u32,
    pub weight: u32,
    pub in_flight: u32,
    pub usable: bool,
    /// Already tried by the current request.
    pub tried: bool,
}

pub struct Balancer {
    strategy: Strategy,
    rr_next: usize,
    rng: u64,
}

impl Balancer {
    pub fn new(strategy: Strategy, seed: u64) -> Balancer {
        let _ = (strategy, seed);
        todo!()
    }
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }
    /// Index into `candidates` of the endpoint to try next, or None when `candidates` is empty.
    /// Order of preference: usable and untried (by strategy); else untried in priority order
    /// (health may be stale); else any, in priority order (a retry on the only endpoint).
    pub fn pick(&mut self, candidates: &[Candidate]) -> Option<usize> {
        let _ = candidates;
        todo!()
    }
}
