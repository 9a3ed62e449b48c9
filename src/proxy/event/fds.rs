//! The descriptor budget: qcc raises its soft `RLIMIT_NOFILE` to the hard limit at start, and
//! keeps `--max-connections` within what that allows (each client may hold an upstream
//! connection too, plus the pool, probes, the listener, logs and state files).

use crate::settings::Settings;

/// Descriptors kept aside for the listener, logs, state files, the resolver, probes and pool.
const RESERVED: u64 = 64;

/// Raise the soft limit as far as allowed and fit `max_connections` into it; says what it did.
pub fn fit_descriptors(settings: &mut Settings) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: as above; raising the soft limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    let fds = lim.rlim_cur;
    // A client and its upstream: two descriptors per connection.
    let fit = usize::try_from(fds.saturating_sub(RESERVED) / 2).unwrap_or(usize::MAX).max(1);
    if settings.max_connections > fit {
        log::warn!(
            "descriptor limit {fds}: serving at most {fit} client connections (--max-connections {} lowered)",
            settings.max_connections
        );
        settings.max_connections = fit;
    } else if fds != before {
        log::info!(
            "descriptor limit raised from {before} to {fds}; up to {} client connections",
            settings.max_connections
        );
    }
}
