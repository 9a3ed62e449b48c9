pub(crate) mod activation;
pub(crate) mod fds;
pub(crate) mod io;
pub(crate) mod signals;
pub(crate) mod slab;
pub(crate) mod transport;
