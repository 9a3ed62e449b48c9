//! The clusters one proxy serves: the one it was started for (index 0), the clusters its routes
//! name, and their fallbacks (`store/routes.rs`). Each has its own balancer, its own session
//! bindings (the loop's `Affinity`, keyed by cluster) and its endpoints, which stay in the loop's
//! one flat list, each tagged with its cluster (`Endpoint::cluster`): the pool, probes, the
//! resolver and the failure queue keep working by endpoint index.
//!
//! A request's way through them, decided once at its first attempt: the first route its body
//! matches names its cluster (else index 0); from there it may use that cluster's fallback
//! chain (`Cluster::chain`, also as the bit mask `Exchange::reach`). `pick` prefers a usable
//! endpoint of the earliest cluster in the chain, so a cluster whose endpoints are all queued,
//! disabled, capped or out of headroom hands the request on; only when no cluster in the chain
//! has a usable one does the balancer's last resort (an untried endpoint that looks down) apply.
//!
//! Single owner: these are plain loop state, like the endpoints they index.

use std::rc::Rc;
use std::time::Instant;

use crate::policy::balancer::{Balancer, Candidate};
use crate::policy::failure_queue::FailureQueue;
use crate::store::cluster::{ClusterConfig, Strategy};
use crate::store::routes::Route;

use super::eligibility::Eligibility;
use super::state::{Endpoint, Exchange};
use super::upstream::affinity::Affinity;

pub struct Cluster {
    pub name: Rc<str>,
    /// Its name as the `x-qcc-cluster` header says it, shared with the exchanges it serves;
    /// none for a profile name that is not a plain header value (checked once, here).
    pub header: Option<Rc<str>>,
    /// As read from the config; its endpoints are in the loop's list (`endpoints` left empty).
    pub cfg: ClusterConfig,
    pub balancer: Balancer,
    /// Itself, then its fallback chain flattened in order (each cluster once): indices.
    pub chain: Vec<usize>,
    /// `chain` as a bit mask (at most `MAX_SERVED` clusters).
    pub reach: u64,
    /// The routes that apply (only the started cluster's), and each one's cluster (an index).
    pub routes: Vec<Route>,
    pub targets: Vec<usize>,
    /// No longer served since a reload (kept so indices stay valid; its endpoints retired).
    pub retired: bool,
    /// The `Shared::cluster_generation` when this slot got its cluster (0 at start): exchanges
    /// that began before a reload gave the slot to another cluster never use it.
    pub born: u64,
    /// Requests this cluster's endpoints served to the end, and of those, how many came to it
    /// down a fallback chain.
    pub served: u64,
    pub fell_back: u64,
    /// The cluster of its chain that served its last request, and when that last changed
    /// (`shared/switches.rs`).
    pub serving: usize,
    pub switched_at: Option<Instant>,
}

impl Cluster {
    /// Cluster number `index` of the loop's list.
    pub fn new(index: usize, mut cfg: ClusterConfig, strategy: Strategy, seed: u64) -> Cluster {
        cfg.endpoints = Vec::new();
        let name: Rc<str> = Rc::from(cfg.name.as_str());
        let plain = name.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        Cluster {
            header: plain.then(|| Rc::clone(&name)),
            name,
            cfg,
            balancer: Balancer::new(strategy, seed),
            chain: Vec::new(),
            reach: 0,
            routes: Vec::new(),
            targets: Vec::new(),
            retired: false,
            born: 0,
            served: 0,
            fell_back: 0,
            serving: index,
            switched_at: None,
        }
    }
}

/// A served cluster's strategy: `--strategy` when given, else the cluster's own (at start and
/// at every reload alike; the started cluster's own is what `settings.strategy` was read from).
pub fn strategy(settings: &crate::settings::Settings, cfg: &ClusterConfig) -> Strategy {
    match settings.strategy_pinned {
        true => settings.strategy,
        false => cfg.strategy.unwrap_or(Strategy::PriorityFailover),
    }
}

/// Work out every cluster's chain and the started cluster's routes from the names in their
/// configs (checked by `store::served::served`: every name is served, no cycle).
pub fn link(clusters: &mut [Cluster]) {
    let find = |clusters: &[Cluster], n: &str| clusters.iter().position(|c| !c.retired && &*c.name == n);
    for i in 0..clusters.len() {
        let mut chain = vec![i];
        let mut k = 0;
        // Breadth-first over fallbacks: a cluster's own fallbacks before theirs.
        while k < chain.len() && chain.len() <= 64 {
            for f in clusters[chain[k]].cfg.fallback.clone() {
                if let Some(j) = find(clusters, &f) {
                    if !chain.contains(&j) {
                        chain.push(j);
                    }
                }
            }
            k += 1;
        }
        chain.truncate(64);
        clusters[i].reach = chain.iter().fold(0, |m, &j| m | 1 << j);
        clusters[i].chain = chain;
        clusters[i].routes = Vec::new();
        clusters[i].targets = Vec::new();
    }
    if let Some(first) = clusters.first() {
        let (routes, targets) =
            first.cfg.routes.iter().filter_map(|r| find(clusters, &r.to).map(|j| (r.clone(), j))).unzip();
        (clusters[0].routes, clusters[0].targets) = (routes, targets);
    }
}

/// May endpoint `i` (`ep`) serve `ex` now (`eligibility.rs`), its cluster slot's birth looked up.
pub fn eligibility(
    ex: &Exchange,
    i: usize,
    ep: &Endpoint,
    clusters: &[Cluster],
    failures: &FailureQueue,
    now: Instant,
) -> Eligibility {
    let born = clusters.get(ep.cluster).map_or(u64::MAX, |c| c.born);
    super::eligibility::eligibility(ex, i, ep, born, failures, now)
}

/// Whether some endpoint other than `except` may still serve `ex` (usable or as a last resort):
/// a retry, or holding a stream's start for one, is worth it.
pub fn another_may_serve(
    ex: &Exchange,
    except: Option<usize>,
    endpoints: &[Endpoint],
    clusters: &[Cluster],
    failures: &FailureQueue,
    now: Instant,
) -> bool {
    endpoints
        .iter()
        .enumerate()
        .any(|(i, ep)| Some(i) != except && eligibility(ex, i, ep, clusters, failures, now).may_serve())
}

/// The endpoint the exchange's next attempt goes to: in the exchange's chain, the earliest
/// cluster with a usable endpoint (`eligibility`), that cluster's session binding first, then
/// its balancer; else the balancer's last resort, cluster by cluster, among the endpoints that
/// are a last resort (never an excluded one: another format, at a cap, used up, reached).
/// `None`: nowhere to go.
pub fn pick(
    clusters: &mut [Cluster],
    affinity: &mut Affinity,
    endpoints: &[Endpoint],
    failures: &FailureQueue,
    ex: &Exchange,
    now: Instant,
) -> Option<usize> {
    let entry = ex.cluster;
    let elig = |i: usize, ep: &Endpoint, born: u64| super::eligibility::eligibility(ex, i, ep, born, failures, now);
    let one = clusters[entry].chain.len() == 1;
    for last_resort in [false, true] {
        for k in 0..clusters[entry].chain.len() {
            let c = clusters[entry].chain[k];
            let mine = |ep: &&Endpoint| ep.cluster == c;
            let born = clusters[c].born;
            // (With no chain the balancer alone decides: its own tiers include the last resort.)
            if !one
                && !last_resort
                && !endpoints.iter().enumerate().any(|(i, ep)| mine(&ep) && elig(i, ep, born).is_usable())
            {
                continue;
            }
            // A session stays where its prompt cache is, while that endpoint is usable and this
            // request has not tried it yet.
            let sticky = ex
                .session
                .as_deref()
                .and_then(|s| affinity.lookup(c, s, now))
                .filter(|&i| endpoints.get(i).is_some_and(|ep| ep.cluster == c && elig(i, ep, born).is_usable()));
            // A request a refusal just taught a rule goes back to the endpoint that refused it.
            let again = ex
                .again
                .filter(|&i| endpoints.get(i).is_some_and(|ep| ep.cluster == c && elig(i, ep, born).is_usable()));
            let chosen = again.or(sticky).or_else(|| {
                clusters[c].balancer.choose(endpoints.iter().enumerate().filter(|(_, ep)| mine(ep)).filter_map(
                    |(i, ep)| {
                        let e = elig(i, ep, born);
                        e.may_serve().then(|| {
                            let cand = Candidate {
                                priority: ep.cfg.priority,
                                weight: ep.cfg.weight,
                                share: ep.headroom.share(),
                                in_flight: ep.in_flight.get(),
                                usable: e.is_usable(),
                                tried: ex.tried.contains(i),
                                reached: false,
                            };
                            (i, cand)
                        })
                    },
                ))
            });
            if chosen.is_some() {
                return chosen;
            }
        }
        if one {
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::routes::{Rule, When};

    fn cfg(name: &str, fallback: &[&str]) -> ClusterConfig {
        ClusterConfig {
            name: name.into(),
            endpoints: Vec::new(),
            retry_on: Default::default(),
            strategy: None,
            routes: Vec::new(),
            fallback: fallback.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn chains_are_flattened_in_order_and_routes_find_their_clusters() {
        let mut main = cfg("main", &["b", "c"]);
        main.routes = vec![Route { rule: Rule::When(When::Tools), to: "d".into() }];
        let mut list: Vec<Cluster> = [main, cfg("b", &["d"]), cfg("c", &["b"]), cfg("d", &[])]
            .into_iter()
            .enumerate()
            .map(|(i, c)| Cluster::new(i, c, Strategy::PriorityFailover, 1))
            .collect();
        link(&mut list);
        assert_eq!(list[0].chain, [0, 1, 2, 3]);
        assert_eq!(list[2].chain, [2, 1, 3]);
        assert_eq!(list[3].chain, [3]);
        assert_eq!(list[2].reach, 0b1110);
        assert_eq!(list[0].routes.len(), 1);
        assert_eq!(list[0].targets, [3]);
        assert!(list[1].routes.is_empty());
        assert_eq!(list[0].header.as_deref(), Some("main"));
        let odd = Cluster::new(0, cfg("two\r\nlines", &[]), Strategy::PriorityFailover, 1);
        assert_eq!(odd.header, None, "a name that is no header value is not sent");
    }
}
