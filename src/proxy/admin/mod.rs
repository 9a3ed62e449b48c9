pub(crate) mod history;
pub(crate) mod metrics;
pub(crate) mod persist;
pub(crate) mod reload;
pub(crate) mod status;
