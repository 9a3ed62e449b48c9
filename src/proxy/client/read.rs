//! The request, read once (`facts.rs`), at the first moment a decision needs it: its key's
//! reservation or its first attempt, its whole body here either way (`pump_exchange` waits for
//! it when routes read it or an endpoint rewrites it). Its body's JSON text (a chunked one
//! decoded); one pass for the routes, the model's place when an endpoint maps models, and what an
//! estimate needs when its key has a budget or an endpoint a `--tpm` cap; the first route it
//! matches chooses its cluster; and when an OpenAI-format endpoint of its chain could serve it,
//! its Chat Completions form, made for the first such endpoint by priority (or why it has none),
//! so that eligibility keeps those endpoints out of a request they cannot take before anything
//! is picked.

use crate::policy::route::Want;
use crate::proxy::shared::Shared;
use crate::proxy::state::Exchange;

impl Shared {
    pub(in crate::proxy) fn read_request(&self, ex: &mut Exchange) {
        if !ex.body_tracker.is_done() || !ex.retry_copy {
            return; // not whole: no route or form; an estimate reads what is here (`Facts::estimate`)
        }
        ex.decode_body();
        // What the served endpoints need read, in one pass over them.
        let (mut rules, mut maps, mut tpm) = (false, false, false);
        for e in self.endpoints.iter().filter(|e| !e.retired) {
            rules |= e.cfg.has_rules();
            maps |= !e.cfg.model_map.is_empty();
            tpm |= e.cfg.caps.tpm.is_some();
        }
        let main = &self.clusters[0];
        // (A request whose URL named its cluster takes no route of the started one.)
        let routes: &[crate::store::routes::Route] = if ex.by_name { &[] } else { &main.routes };
        let want = Want {
            // A model tag (`[1m]`) is taken off by the same splice: the model is read whenever
            // the body is read at all (else `look_model` finds it below).
            model: rules || maps || !routes.is_empty(),
            estimate: tpm || ex.key.as_ref().is_some_and(|k| k.budgeted),
            fields: rules,
        };
        if want != Want::default() || !routes.is_empty() {
            let Exchange { facts, body, .. } = ex;
            facts.look(routes, body, want);
            if let Some(n) = facts.route() {
                let c = main.targets[n];
                (ex.cluster, ex.reach) = (c, self.clusters[c].reach);
            }
        }
        if !want.model {
            ex.facts.look_model(&ex.body);
        }
        let reach = ex.reach;
        let openai = self
            .endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.cfg.enabled
                    && !e.retired
                    && crate::translate::rewrites(&e.cfg.format)
                    && (reach >> e.cluster) & 1 == 1
            })
            .min_by_key(|(i, e)| (e.cfg.priority, *i));
        if let Some((i, e)) = openai {
            ex.read_chat(i, e);
        }
    }
}
