//! An upstream connection lent out: to an attempt, a recovery probe, or an orphaned answer read
//! for its usage (`forward/orphan.rs`). The connection stays in `Net`'s slab; its holder has a
//! `Lease` on it, made only by the pool (`upstream/pool.rs`: `open_upstream`, `take_pooled`) and
//! consumed only by `Net::release_upstream` (back to the pool, or closed) or
//! `Net::close_upstream`. (The type sits here, below the pool, beside the attempt that holds it;
//! `new` and `end` are the pool's alone: nothing else calls them.) A lease
//! dropped any other way would leave a registered connection that no one owns: a debug build
//! panics there (the tests run one), a release build says so in the log.

use crate::proxy::event::slab::Key;

#[must_use = "a lent upstream connection goes back through `Net::release_upstream` or `Net::close_upstream`"]
#[derive(Debug)]
pub struct Lease(Key);

impl Lease {
    pub(in crate::proxy) fn new(key: Key) -> Lease {
        Lease(key)
    }

    /// The connection's key in `Net::upstreams`, to reach it (never to close it).
    pub fn key(&self) -> Key {
        self.0
    }

    /// Given back to the pool: the key, and no drop check.
    pub(in crate::proxy) fn end(self) -> Key {
        let key = self.0;
        std::mem::forget(self);
        key
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        log::error!("an upstream connection ({:?}) was dropped by its holder without release or close", self.0);
        debug_assert!(false, "upstream lease dropped without release or close");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_given_back_is_not_a_leak() {
        let l = Lease::new(Key { index: 3, gen: 1 });
        assert_eq!(l.key(), Key { index: 3, gen: 1 });
        assert_eq!(l.end(), Key { index: 3, gen: 1 });
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "upstream lease dropped")]
    fn a_lease_dropped_is_caught_in_debug_builds() {
        drop(Lease::new(Key { index: 3, gen: 1 }));
    }
}
