//! One proxy for every terminal: a request whose URL starts `/c/NAME` is for cluster NAME of the
//! config, whichever cluster the proxy was started for, so a second terminal (or an SDK script)
//! needs no second proxy: `qcc use NAME` and `qcc env --cluster NAME` hand out
//! `http://127.0.0.1:PORT/c/NAME` when the running proxy was started for another cluster.
//! The prefix is taken off the target (the upstream never sees it). A cluster the proxy already
//! serves takes the request at once; another is loaded on demand (the disk thread reads it and
//! its fallbacks into the served set: `Edit::Serve`), the request waiting for it before its first
//! attempt. Access control, keys (a key for another cluster is refused) and limits apply as for
//! any request; the started cluster's routes do not (the URL chose the cluster). The request
//! history, `/metrics`, the dashboard and `x-qcc-cluster` say which cluster served.

use std::time::Instant;

use crate::http::RequestHead;
use crate::proxy::client::conn::Conn;
use crate::proxy::shared::disk::Edit;
use crate::proxy::shared::Shared;
use crate::proxy::state::*;

/// The cluster a request's URL names (`/c/NAME`, `/c/NAME/...`, `/c/NAME?...`), its prefix taken
/// off the target. `None`: no such prefix (or not a cluster name: the target is left as it is).
pub fn take_cluster(head: &mut RequestHead) -> Option<String> {
    let rest = head.target_bytes().strip_prefix(b"/c/")?;
    let end = rest.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(rest.len());
    let name = std::str::from_utf8(&rest[..end]).ok()?;
    crate::store::names::check_name(name).ok()?;
    let name = name.to_string();
    head.target.start += 3 + end;
    Some(name)
}

/// The exchange's cluster from the name its URL gave: served already, or to be loaded.
pub fn place(sh: &Shared, ex: &mut Exchange, name: String) {
    ex.by_name = true;
    match sh.clusters.iter().position(|c| !c.retired && *c.name == *name) {
        Some(i) => (ex.cluster, ex.reach) = (i, sh.clusters[i].reach),
        None => ex.load = Load::Wanted(name),
    }
}

impl Conn<'_> {
    /// Before the first attempt of a request for a cluster not served yet: ask the disk thread
    /// to load it. True while the request waits for that.
    pub(in crate::proxy) fn load_named(&mut self) -> bool {
        let ClientPhase::Exchange(ex) = &mut self.c.phase else { return false };
        match std::mem::replace(&mut ex.load, Load::No) {
            Load::No => false,
            Load::Wanted(name) if self.sh.settings.builtin_default => {
                let msg = format!("no cluster '{name}' here: the proxy runs the built-in default endpoint");
                self.respond_local_error(404, &msg, Instant::now());
                true
            }
            Load::Wanted(name) => {
                log::info!("cluster '{name}' asked for by URL: loading it");
                self.sh.disk.load(Edit::Serve(name.clone()), Some(self.key));
                ex.load = Load::Asked(name);
                true
            }
            asked => {
                ex.load = asked;
                true
            }
        }
    }

    /// The disk thread has loaded (or could not load: `error`) the cluster this request named:
    /// its first attempt now, or a 404 that says why.
    pub(in crate::proxy) fn named_loaded(&mut self, error: Option<String>, now: Instant) {
        let ClientPhase::Exchange(ex) = &mut self.c.phase else { return };
        let Load::Asked(name) = std::mem::replace(&mut ex.load, Load::No) else { return };
        let found = self.sh.clusters.iter().position(|c| !c.retired && *c.name == *name);
        match (found, error) {
            (Some(i), _) => {
                (ex.cluster, ex.reach) = (i, self.sh.clusters[i].reach);
                // Its slot may be younger than the exchange: it is this exchange's own chain.
                ex.since = self.sh.cluster_generation;
                self.start_attempt(now);
            }
            (None, error) => {
                let why = error.unwrap_or_else(|| format!("cluster '{name}' could not be served"));
                log::info!("a request for cluster '{name}' -> 404: {why}");
                self.sh.stats.rejected += 1;
                self.respond_local_error(404, &why, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(target: &str) -> RequestHead {
        let raw = format!("POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        crate::http::parse_request_head(raw.as_bytes()).expect("a head").expect("whole")
    }

    #[test]
    fn the_prefix_names_the_cluster_and_is_taken_off() {
        for (target, name, rest) in [
            ("/c/glm/v1/messages?beta=true", Some("glm"), "/v1/messages?beta=true"),
            ("/c/work-2/v1/models", Some("work-2"), "/v1/models"),
            ("/c/glm", Some("glm"), ""),
            ("/c/glm?x=1", Some("glm"), "?x=1"),
            ("/v1/messages", None, "/v1/messages"),
            ("/c/", None, "/c/"),
            ("/c/a%20b/v1/messages", None, "/c/a%20b/v1/messages"),
        ] {
            let mut h = head(target);
            assert_eq!(take_cluster(&mut h).as_deref(), name, "{target}");
            assert_eq!(h.target(), rest, "{target}");
        }
    }
}
