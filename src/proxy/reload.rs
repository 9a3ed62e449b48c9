//! SIGHUP: re-read the served cluster from the config file without dropping connections.
//! New requests use the new endpoint set; endpoints whose id is unchanged keep their health
//! and failure-queue state. A broken config is logged and the running one kept.

use std::time::Instant;

use super::{new_endpoint, EventLoop};
use crate::store::config::ConfigFile;

impl EventLoop {
    /// Re-read the served cluster; what changed, or why nothing did (logged either way).
    pub(super) fn reload(&mut self, now: Instant) -> Result<(usize, usize, usize), String> {
        if self.settings.builtin_default {
            log::info!("reload: running the built-in default endpoint; nothing to re-read");
            return Err("the proxy runs the built-in default endpoint; there is no cluster to re-read".into());
        }
        let path = self.settings.config_path.clone();
        let cluster = match ConfigFile::load(&path).and_then(|f| f.cluster(&self.settings.cluster.name)) {
            Ok(c) => c,
            Err(e) => {
                log::error!("reload failed, keeping the running configuration: {e}");
                return Err(e.to_string());
            }
        };
        // Build everything first, so a bad CA file leaves the running set untouched.
        // CA files are read again (they may have been renewed); endpoints share configs.
        let mut tls_configs = super::transport::TlsConfigs::default();
        let mut fresh = Vec::with_capacity(cluster.endpoints.len());
        for cfg in &cluster.endpoints {
            match new_endpoint(cfg.clone(), self.settings.ca_file.as_deref(), &mut tls_configs) {
                Ok(ep) => fresh.push(ep),
                Err(e) => {
                    log::error!("reload failed, keeping the running configuration: {e}");
                    return Err(e);
                }
            }
        }
        let (mut added, mut changed, mut removed) = (0, 0, 0);
        let new_ids: Vec<String> = fresh.iter().map(|e| e.cfg.id.clone()).collect();
        for mut ep in fresh {
            match self.endpoints.iter().position(|old| old.cfg.id == ep.cfg.id) {
                Some(i) => {
                    let old = &mut self.endpoints[i];
                    let same_target = old.cfg.url == ep.cfg.url
                        && old.cfg.api_key == ep.cfg.api_key
                        && old.cfg.ca_file == ep.cfg.ca_file;
                    if !same_target || old.retired {
                        changed += usize::from(!old.retired);
                        added += usize::from(old.retired);
                        // Keep what we learned about it; connections and lookups were for the old
                        // target: the new generation keeps them from ever being used again.
                        ep.health = old.health.clone();
                        ep.counters = old.counters.clone();
                        ep.generation = old.generation.wrapping_add(1);
                        let stale = std::mem::take(&mut old.idle);
                        *old = ep;
                        for k in stale {
                            self.close_upstream(k);
                        }
                        // A probe of the old target must not speak for the new one.
                        self.cancel_probe(i);
                        self.kick_resolve(i);
                    } else {
                        old.cfg = ep.cfg;
                    }
                }
                None => {
                    self.endpoints.push(ep);
                    added += 1;
                    self.kick_resolve(self.endpoints.len() - 1);
                }
            }
        }
        for i in 0..self.endpoints.len() {
            if !self.endpoints[i].retired && !new_ids.contains(&self.endpoints[i].cfg.id) {
                self.endpoints[i].retired = true;
                removed += 1;
                for k in std::mem::take(&mut self.endpoints[i].idle) {
                    self.close_upstream(k);
                }
                let id = self.endpoints[i].cfg.id.clone();
                if self.failures.remove(&id) {
                    self.queue_changed(now);
                }
            }
        }
        self.settings.cluster = cluster;
        log::info!(
            "reloaded cluster '{}' from {}: {added} added, {changed} changed, {removed} removed",
            self.settings.cluster.name,
            path.display()
        );
        self.history.push("", "reload", format!("{added} added, {changed} changed, {removed} removed"));
        Ok((added, changed, removed))
    }

    fn kick_resolve(&mut self, idx: usize) {
        let ep = &mut self.endpoints[idx];
        if ep.addrs.is_empty() {
            self.resolver.lookup(idx, ep);
        }
    }
}
