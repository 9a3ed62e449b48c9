//! What eligibility answers (`proxy/eligibility.rs` asks it): whether an endpoint may serve a
//! request now, and why not. Plain data, shown in the request history.

/// Whether an endpoint may serve an exchange now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    Usable,
    /// Only when nothing is usable: its health says no (it may be stale), or it was tried and
    /// the request never reached it (its connect failed).
    LastResort(Reason),
    /// Never, for this request.
    Excluded(Reason),
}

/// Why an endpoint is not simply usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Disabled, or gone from the config (retired by a reload).
    Disabled,
    /// Of a cluster outside the request's chain, or of a cluster slot a reload gave to another
    /// cluster after the request began.
    OtherCluster,
    /// Its format cannot take this request (a path other than `POST /v1/messages` on an
    /// OpenAI-format endpoint, or content with no Chat Completions form: the request's facts
    /// say which).
    Dialect,
    /// The request may have reached it already: never sent twice.
    Reached,
    /// It answered that it lacks this API (404/405 to a token count): remembered.
    Lacks,
    /// At one of its caps (`--rpm`, `--tpm`, `--concurrent`).
    AtCap,
    /// Its rate-limit headers say it is used up until their reset.
    NoHeadroom,
    /// Tried by this request; its connect failed, so it never got the request.
    Tried,
    /// In the failure queue, waiting for its probe.
    Queued,
    /// Its health says no (failures in a row, a `retry-after` running).
    Unhealthy,
}

impl Reason {
    /// Every reason, in declaration order: a table indexed by `reason as usize` has `COUNT` rows.
    pub const ALL: [Reason; 10] = [
        Reason::Disabled,
        Reason::OtherCluster,
        Reason::Dialect,
        Reason::Reached,
        Reason::Lacks,
        Reason::AtCap,
        Reason::NoHeadroom,
        Reason::Tried,
        Reason::Queued,
        Reason::Unhealthy,
    ];
    pub const COUNT: usize = Reason::ALL.len();

    /// As the request history and the logs say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Disabled => "disabled",
            Reason::OtherCluster => "another cluster's",
            Reason::Dialect => "its format cannot take this request",
            Reason::Reached => "already tried",
            Reason::Lacks => "it lacks this API",
            Reason::AtCap => "at a cap",
            Reason::NoHeadroom => "rate limit used up",
            Reason::Tried => "tried, never reached",
            Reason::Queued => "in the failure queue",
            Reason::Unhealthy => "unhealthy",
        }
    }
}

impl Eligibility {
    pub fn is_usable(self) -> bool {
        self == Eligibility::Usable
    }

    /// Usable, or a last resort: the request may still go there.
    pub fn may_serve(self) -> bool {
        !matches!(self, Eligibility::Excluded(_))
    }

    /// Why it is not usable (`None`: it is).
    pub fn reason(self) -> Option<Reason> {
        match self {
            Eligibility::Usable => None,
            Eligibility::LastResort(r) | Eligibility::Excluded(r) => Some(r),
        }
    }
}

// `ALL` lists each reason at its own index (checked when the crate builds).
const _: () = {
    let mut i = 0;
    while i < Reason::COUNT {
        assert!(Reason::ALL[i] as usize == i, "Reason::ALL out of declaration order");
        i += 1;
    }
};
