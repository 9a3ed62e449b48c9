//! The served clusters' state, changed only here (their owner): placed on a reload, picked from
//! for a request's attempt, counted when one serves, and their moves down a fallback chain
//! (`switches.rs`). Every other room reads them (`Shared::clusters` is `ReadOnly`), so a
//! connection's code cannot rewrite a cluster's balancer, chain or counters.

use std::time::Instant;

use super::Shared;
use crate::proxy::clusters::Cluster;
use crate::proxy::state::Exchange;
use crate::store::cluster::ClusterConfig;
use crate::store::served::MAX_SERVED;

impl Shared {
    /// The freshly read clusters put in place: each one's index in the list (by name; a new one
    /// appended, or given a retired one's place past `MAX_SERVED`, indices held by exchanges and
    /// endpoints staying valid; one no longer served retired first, so that its place can be
    /// taken), and how many changed.
    pub(in crate::proxy) fn place_clusters(&mut self, fresh: &[ClusterConfig]) -> (Vec<usize>, usize) {
        let mut changed = 0;
        for room in self.clusters.0.iter_mut().skip(1) {
            if !room.retired && !fresh.iter().any(|c| *c.name == *room.name) {
                log::info!("cluster '{}' is no longer served", room.name);
                room.retired = true;
                changed += 1;
            }
        }
        let mut place = Vec::with_capacity(fresh.len());
        for cfg in fresh {
            let at = self.clusters.iter().position(|c| *c.name == *cfg.name);
            let strategy = crate::proxy::clusters::strategy(&self.settings, cfg);
            let i = match at {
                Some(i) => {
                    let room = &mut self.clusters.0[i];
                    if room.retired
                        || room.cfg.retry_on != cfg.retry_on
                        || room.cfg.routes != cfg.routes
                        || room.cfg.fallback != cfg.fallback
                    {
                        changed += 1;
                    }
                    if strategy != room.balancer.strategy() {
                        log::info!(
                            "cluster '{}': strategy {} (was {})",
                            room.name,
                            strategy.as_str(),
                            room.balancer.strategy().as_str()
                        );
                        room.balancer.set_strategy(strategy);
                        changed += 1;
                    }
                    room.retired = false;
                    room.cfg = ClusterConfig { endpoints: Vec::new(), ..cfg.clone() };
                    i
                }
                None => {
                    // A new place while there is room for its bit in a request's chain mask; then
                    // the place of a cluster retired earlier (its endpoints are retired too, and
                    // are never picked), not the started one's.
                    let seed = self.stats.total.wrapping_add(self.clusters.len() as u64);
                    let free = match self.clusters.len() < MAX_SERVED {
                        true => None,
                        false => {
                            self.clusters.iter().enumerate().skip(1).find(|(i, c)| c.retired && !place.contains(i))
                        }
                    };
                    changed += 1;
                    // A slot given to a cluster now: exchanges already under way never use it
                    // (their chain masks were made when the slot was another cluster's).
                    self.cluster_generation += 1;
                    let mut room = Cluster::new(0, cfg.clone(), strategy, seed);
                    room.born = self.cluster_generation;
                    match free.map(|(i, _)| i) {
                        Some(i) => {
                            room.serving = i;
                            self.clusters.0[i] = room;
                            i
                        }
                        None => {
                            room.serving = self.clusters.len();
                            self.clusters.0.push(room);
                            self.clusters.len() - 1
                        }
                    }
                }
            };
            place.push(i);
        }
        crate::proxy::clusters::link(&mut self.clusters.0);
        (place, changed)
    }

    /// The endpoint `ex`'s next attempt goes to (`clusters::pick`: its balancers move).
    pub(in crate::proxy) fn pick(&mut self, ex: &Exchange, now: Instant) -> Option<usize> {
        crate::proxy::clusters::pick(&mut self.clusters.0, &mut self.affinity, &self.endpoints, &self.failures, ex, now)
    }

    /// Endpoint `idx` served a request that came in for cluster `entry` (started at `started`).
    pub(in crate::proxy) fn count_served(&mut self, idx: usize, entry: usize, started: Instant, now: Instant) {
        let cluster = self.endpoints[idx].cluster;
        let room = &mut self.clusters.0[cluster];
        room.served += 1;
        if cluster != entry {
            room.fell_back += 1;
        }
        if self.clusters[entry].serving != cluster {
            self.note_served(entry, cluster, started, now);
        }
    }
}
