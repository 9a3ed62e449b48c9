pub(crate) mod bodies;
pub(crate) mod history;
pub(crate) mod requests;
