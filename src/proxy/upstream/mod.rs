pub(crate) mod affinity;
pub(crate) mod net;
pub(crate) mod one_shot;
pub(crate) mod pool;
pub(crate) mod resolver;
