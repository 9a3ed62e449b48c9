pub(crate) mod outcome;
pub(crate) mod response;
pub(crate) mod sse;
