//! A budgeted client key's request, its body complete, reserves its estimate against the key's
//! budgets before it may go upstream (`policy::limits::Reservation`): its `max_tokens`, its
//! input estimated from its size, and their price. Twenty requests that start together on a
//! 100-token budget are then not all served: each sees what the ones before it reserved. The
//! reservation is given back when the request ends, once what it used has been counted.

use crate::policy::limits::{budget_room, secs_to_midnight, Refusal, Reservation, Used};
use crate::proxy::shared::Shared;
use crate::proxy::state::Exchange;

impl Shared {
    /// Reserve the estimate of `ex`'s request against its key's budgets (once, for a budgeted
    /// key). A refusal when a budget is already filled by what is counted and reserved: the
    /// request is answered 429 and goes nowhere.
    pub(in crate::proxy) fn reserve(&mut self, ex: &mut Exchange) -> Result<(), Refusal> {
        let wall = self.wall_secs();
        self.usage_day();
        if !ex.key.as_ref().is_some_and(|t| t.budgeted && t.reserved.is_none()) {
            return Ok(());
        }
        self.read_request(ex);
        let e = ex.estimate(&self.settings.prices); // from the request's one read
        let Some(ticket) = ex.key.as_mut().filter(|t| t.budgeted && t.reserved.is_none()) else { return Ok(()) };
        let Some(key) = self.keys.find_mut(&ticket.name) else { return Ok(()) };
        let counted = self.usage.key_day(&self.usage_day.1, &key.entry.name);
        let used = Used::from(&counted).with(key.reserved.get());
        match budget_room(&key.entry.name, &key.entry.limits, used, secs_to_midnight(wall)) {
            Ok(()) => {
                let Some(ticket) = ex.key.as_mut() else { return Ok(()) };
                ticket.reserved = Some(Reservation::hold(&key.reserved, e));
                Ok(())
            }
            Err(r) => {
                key.limited[r.limit.index()] += 1;
                self.stats.limited += 1;
                log::info!("{} (with what requests in progress reserved) -> 429", r.message);
                Err(r)
            }
        }
    }
}
