//! Token usage as a Messages reply reports it (a JSON reply's `usage`, a stream's
//! `message_start` and `message_delta`), read with typed serde structs.

use serde::Deserialize;

use crate::store::usage::TokenCount as Count;

/// Token usage of one response, as the API reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl Tokens {
    /// One response's counters for the usage book.
    pub fn counts(&self) -> crate::store::usage::Counts {
        crate::store::usage::Counts {
            requests: 1,
            input_tokens: self.input,
            output_tokens: self.output,
            cache_creation_input_tokens: self.cache_creation,
            cache_read_input_tokens: self.cache_read,
        }
    }
}

/// A `usage` object. A counter that is missing, null or not a whole number counts as 0.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(in crate::proxy) struct Usage {
    input_tokens: Count,
    output_tokens: Count,
    cache_creation_input_tokens: Count,
    cache_read_input_tokens: Count,
}

impl Usage {
    pub(in crate::proxy) fn tokens(&self) -> Tokens {
        Tokens {
            input: self.input_tokens.0,
            output: self.output_tokens.0,
            cache_creation: self.cache_creation_input_tokens.0,
            cache_read: self.cache_read_input_tokens.0,
        }
    }
}
