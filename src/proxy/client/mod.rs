pub(crate) mod accept;
pub(crate) mod budget;
pub(crate) mod exchange;
pub(crate) mod guard;
pub(crate) mod keys;
pub(crate) mod refusals;
pub(crate) mod reserve;
