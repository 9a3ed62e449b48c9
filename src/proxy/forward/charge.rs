//! What an answer is charged: its tokens by day, endpoint and model, by Claude Code session and
//! by client key (with their cost), a key's budget crossed (an alert, once), and the UTC day
//! they are counted in. The usage book is the loop's; `persist.rs` writes it.

use std::time::{Instant, SystemTime};

use crate::proxy::shared::Shared;
use crate::store::usage::Counts;

impl Shared {
    /// Count one response's usage: by endpoint and model, and by the request's session and
    /// client key (`key`: the name its ticket holds), alerting when a budget is crossed. Its cost
    /// is the answering model's price, or, when no price names that model (a translated or
    /// renamed answer: `glm-4.6`), the price of `asked`, the model the client asked for; that
    /// name is returned when it was the one used.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::proxy) fn record_usage(
        &mut self,
        idx: usize,
        model: Option<&str>,
        asked: Option<&str>,
        c: &Counts,
        session: Option<&str>,
        key: Option<&std::rc::Rc<str>>,
        now: Instant,
    ) -> Option<String> {
        let ep = &mut self.endpoints[idx];
        ep.load.charge(&ep.cfg.caps, c.input_tokens.saturating_add(c.output_tokens), now);
        self.usage_day();
        self.usage.record(&self.usage_day.1, &self.endpoints[idx].cfg.id, model.unwrap_or("unknown"), c);
        let prices = &self.settings.prices;
        let (cost, priced_as) = match model.and_then(|m| prices.cost(m, c)) {
            Some(cost) => (cost, None),
            None => match asked.and_then(|m| Some((prices.cost(m, c)?, m))) {
                Some((cost, m)) => (cost, Some(m.to_string())),
                None => (0.0, None),
            },
        };
        if let Some(s) = session {
            self.usage.record_session(&self.usage_day.1, s, c, cost);
        }
        if let Some(name) = key {
            let (before, after) = self.usage.record_key(&self.usage_day.1, name, c, cost);
            self.budget_crossed(name, &before, &after, now);
        }
        self.usage_changed(now);
        priced_as
    }

    /// A client key's day went past one of its budgets with this response: alert once (a
    /// restart does not alert again: the day's counts before it were already past).
    fn budget_crossed(
        &mut self,
        name: &str,
        before: &crate::store::usage::KeyCounts,
        after: &crate::store::usage::KeyCounts,
        now: Instant,
    ) {
        use crate::policy::limits::{crossed, Used};
        let Some(key) = self.keys.find(name) else { return };
        for (limit, msg) in crossed(name, &key.entry.limits, Used::from(before), Used::from(after)) {
            self.budget_alert(name, limit, &msg, now);
        }
    }

    /// Today's name in the usage book, "YYYY-MM-DD" (UTC); made once a day, not once a response.
    pub(in crate::proxy) fn usage_day(&mut self) -> &str {
        let day_no = self.usage_day_no();
        if self.usage_day.0 != day_no || self.usage_day.1.is_empty() {
            self.usage_day = (day_no, crate::store::timefmt::date(SystemTime::now()));
        }
        &self.usage_day.1
    }

    /// Today's UTC day number.
    pub(in crate::proxy) fn usage_day_no(&self) -> i64 {
        crate::store::timefmt::day_number(SystemTime::now())
    }

    /// The wall clock in unix seconds.
    pub(in crate::proxy) fn wall_secs(&self) -> u64 {
        SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}
