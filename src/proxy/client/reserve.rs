//! A budgeted client key's request, its body complete, reserves its estimate against the key's
//! budgets before it may go upstream (`policy::limits::Reservation`): its `max_tokens`, its
//! input estimated from its size, and their price. Twenty requests that start together on a
//! 100-token budget are then not all served: each sees what the ones before it reserved. The
//! reservation is given back when the request ends, once what it used has been counted.

use serde::Deserialize;

use crate::policy::limits::{
    budget_room, secs_to_midnight, Refusal, Reservation, Used, BYTES_PER_TOKEN, DEFAULT_MAX_TOKENS,
};
use crate::proxy::shared::Shared;
use crate::proxy::state::Exchange;

/// What a Messages request asks for that an estimate needs (everything else skipped unparsed).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Asked {
    model: Option<String>,
    max_tokens: Option<u64>,
}

/// The estimate of a request body's tokens (input from its size, output its `max_tokens`) and,
/// when `model` is priced, their cost.
pub fn estimate(body: &[u8], prices: &crate::store::prices::PriceTable) -> Used {
    let asked: Asked = serde_json::from_slice(body).unwrap_or_default();
    let input = body.len() as u64 / BYTES_PER_TOKEN;
    let output = asked.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let counts = crate::store::usage::Counts { input_tokens: input, output_tokens: output, ..Default::default() };
    let usd = asked.model.as_deref().and_then(|m| prices.cost(m, &counts)).unwrap_or(0.0);
    Used { tokens: input.saturating_add(output), usd }
}

impl Shared {
    /// Reserve the estimate of `ex`'s request against its key's budgets (once, for a budgeted
    /// key). A refusal when a budget is already filled by what is counted and reserved: the
    /// request is answered 429 and goes nowhere.
    pub(in crate::proxy) fn reserve(&mut self, ex: &mut Exchange) -> Result<(), Refusal> {
        let wall = self.wall_secs();
        self.usage_day();
        let Some(ticket) = ex.key.as_mut().filter(|t| t.budgeted && t.reserved.is_none()) else { return Ok(()) };
        let Some(key) = self.keys.find_mut(&ticket.name) else { return Ok(()) };
        let counted = self.usage.key_day(&self.usage_day.1, &key.entry.name);
        let used = Used::from(&counted).with(key.reserved.get());
        match budget_room(&key.entry.name, &key.entry.limits, used, secs_to_midnight(wall)) {
            Ok(()) => {
                let e = ex.estimate(&self.settings.prices);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_estimate_is_max_tokens_and_the_size_and_their_price() {
        let prices = crate::store::prices::PriceTable::default();
        let body =
            br#"{"model":"claude-sonnet-4-5","max_tokens":50,"messages":[{"role":"user","content":"hello there"}]}"#;
        let e = estimate(body, &prices);
        assert_eq!(e.tokens, 50 + body.len() as u64 / 4);
        assert!(e.usd > 0.0, "a priced model");
        let e = estimate(b"not json", &prices);
        assert_eq!(e.tokens, DEFAULT_MAX_TOKENS + 2);
        assert_eq!(e.usd, 0.0);
    }
}
