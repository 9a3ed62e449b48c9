//! The policy types: endpoint health, the balancer's strategies and the failure queue.
//! Pure state machines: they never read the clock (callers pass `now`) and do no I/O but the
//! failure queue's own file.

pub mod balancer;
pub mod caps;
pub mod eligibility;
pub mod failure_queue;
pub mod headroom;
pub mod health;
pub mod limits;
pub mod refusal;
pub mod route;
