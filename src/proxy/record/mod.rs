pub(crate) mod history;
pub(crate) mod requests;
