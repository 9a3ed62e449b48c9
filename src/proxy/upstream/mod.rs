pub(crate) mod affinity;
pub(crate) mod attempt;
pub(crate) mod mapping;
pub(crate) mod pool;
pub(crate) mod probe;
pub(crate) mod resolver;
pub(crate) mod translation;
pub(crate) mod transport;
