//! Re-reading the served cluster from the config file without dropping connections (SIGHUP,
//! `POST /_qcc/reload`, a dashboard edit). The disk thread reads the file and the CA files and
//! builds the endpoints (`disk.rs`); the loop applies them. New requests use the new endpoint
//! set; endpoints whose id is unchanged keep their health and failure-queue state. A broken
//! config is logged (and said to whoever asked) and the running one kept.

use std::time::Instant;

use serde_json::json;

use crate::proxy::event::slab::Key;
use crate::proxy::shared::disk::{Edit, Fresh};
use crate::proxy::state::Endpoint;
use crate::proxy::EventLoop;

impl EventLoop {
    /// Have the disk thread make `edit` and read the cluster again; `asker` (the client and its
    /// keep-alive wish) waits for the answer.
    pub(in crate::proxy) fn request_reload(&mut self, edit: Edit, asker: Option<(Key, bool)>, now: Instant) {
        if self.sh.settings.builtin_default {
            let msg = "the proxy runs the built-in default endpoint; there is no cluster config to read or edit";
            log::info!("reload: {msg}");
            if let Some((ck, keep_alive)) = asker {
                self.respond_json(ck, keep_alive, 409, &error_json(msg), now);
            }
            return;
        }
        if let Some((ck, keep_alive)) = asker {
            self.with_conn(ck, now, |conn| conn.wait(keep_alive, now));
        }
        self.sh.disk.load(edit, asker.map(|(ck, _)| ck));
    }

    /// Put the freshly read clusters in place; what was added, changed and removed.
    pub(in crate::proxy) fn apply_reload(&mut self, fresh: Fresh, now: Instant) -> (usize, usize, usize) {
        let Fresh { clusters, prices, notify_urls, alert_tls, endpoints: fresh, .. } = fresh;
        let path = self.sh.settings.config_path.clone();
        let (mut added, mut changed, mut removed) = (0, 0, 0);
        // Each fresh cluster's place in the loop's list (`shared/served.rs`).
        let (place, moved) = self.sh.place_clusters(&clusters);
        changed += moved;
        // Endpoints looked up in maps by (cluster, id), not by scanning: a reload is O(E).
        let new_ids: std::collections::HashSet<(usize, String)> =
            fresh.iter().map(|(c, cfg, _)| (place[*c], cfg.id.clone())).collect();
        let slots: std::collections::HashMap<(usize, String), usize> =
            self.sh.endpoints.iter().enumerate().map(|(i, ep)| ((ep.cluster, ep.cfg.id.clone()), i)).collect();
        for (c, cfg, tls) in fresh {
            let mut ep = Endpoint::new(cfg, place[c], tls);
            match slots.get(&(ep.cluster, ep.cfg.id.clone())).copied() {
                Some(i) => {
                    let old = &mut self.sh.endpoints[i];
                    let same_target = old.cfg.url == ep.cfg.url
                        && old.cfg.api_key == ep.cfg.api_key
                        && old.cfg.ca_file == ep.cfg.ca_file;
                    if !same_target || old.retired {
                        changed += usize::from(!old.retired);
                        added += usize::from(old.retired);
                        // Keep what we learned about it; connections and lookups were for the old
                        // target: the new generation keeps them from ever being used again.
                        ep.health = old.health.clone();
                        ep.in_flight = std::rc::Rc::clone(&old.in_flight);
                        ep.last_ok_model = old.last_ok_model.take();
                        ep.counters = old.counters.clone();
                        ep.generation = old.generation.wrapping_add(1);
                        let stale = std::mem::take(&mut old.idle);
                        *old = ep;
                        for k in stale {
                            self.net.close_key(&mut self.sh.endpoints, k);
                        }
                        // A probe of the old target must not speak for the new one.
                        self.probes.cancel(&mut self.net, &mut self.sh, i);
                        self.kick_resolve(i);
                    } else {
                        let mut cfg = ep.cfg;
                        if old.learning > 0 {
                            // Rules it learned whose write has not come back yet: not lost to a
                            // read of the file from before that write.
                            cfg.learned.merge(&old.cfg.learned);
                        }
                        changed += usize::from(old.cfg != cfg);
                        old.cfg = cfg;
                    }
                }
                None => {
                    self.sh.endpoints.push(ep);
                    added += 1;
                    self.kick_resolve(self.sh.endpoints.len() - 1);
                }
            }
        }
        for i in 0..self.sh.endpoints.len() {
            let key = (self.sh.endpoints[i].cluster, self.sh.endpoints[i].cfg.id.clone());
            if !self.sh.endpoints[i].retired && !new_ids.contains(&key) {
                self.sh.endpoints[i].retired = true;
                removed += 1;
                self.net.drop_pool(&mut self.sh.endpoints, i);
                // (The queue is by id: another served cluster may hold the same endpoint.)
                let id = key.1;
                let elsewhere = self.sh.endpoints.iter().any(|e| !e.retired && e.cfg.id == id);
                if !elsewhere && self.sh.failures.remove(&id) {
                    self.sh.queue_changed(now);
                }
            }
        }
        if notify_urls != self.sh.settings.config_notify_urls {
            log::info!("alert receivers changed in {}", path.display());
            let urls = [self.sh.settings.notify_urls.clone(), notify_urls.clone()].concat();
            for up in self.sh.notifier.set_urls(&urls, alert_tls) {
                self.net.close_key(&mut self.sh.endpoints, up);
            }
            self.sh.set_config_notify_urls(notify_urls);
        }
        if prices != self.sh.settings.prices {
            log::info!("prices changed in {}", path.display());
            self.sh.set_prices(prices);
            changed += 1;
        }
        log::info!(
            "reloaded cluster '{}' from {}: {added} added, {changed} changed, {removed} removed",
            self.sh.clusters[0].name,
            path.display()
        );
        self.sh.history.push("", "reload", format!("{added} added, {changed} changed, {removed} removed"));
        (added, changed, removed)
    }

    fn kick_resolve(&mut self, idx: usize) {
        let ep = &mut self.sh.endpoints[idx];
        if ep.addrs.is_empty() {
            self.net.resolver.lookup(idx, ep);
        }
    }
}

pub(in crate::proxy) fn error_json(msg: &str) -> serde_json::Value {
    json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}})
}
