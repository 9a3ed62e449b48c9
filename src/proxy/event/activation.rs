//! systemd socket activation: when started by a `.socket` unit, the listening socket arrives as
//! file descriptor 3 (`LISTEN_FDS`, `LISTEN_PID`, sd_listen_fds(3)). The kernel then holds new
//! connections while qcc restarts: none is refused during an upgrade.

use std::os::fd::FromRawFd;

/// The first descriptor systemd passes.
const SD_LISTEN_FDS_START: i32 = 3;

/// The passed listening socket, if this process was socket-activated. The variables are removed
/// so that nothing qcc starts inherits them.
pub fn inherited_listener() -> Result<Option<std::net::TcpListener>, String> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None); // meant for another process (our parent)
    }
    match fds.trim().parse::<u32>() {
        Ok(0) | Err(_) => return Ok(None),
        Ok(1) => {}
        Ok(n) => return Err(format!("socket activation passed {n} sockets; qcc listens on one")),
    }
    // SAFETY: fstat on a descriptor number only reads its metadata; a closed fd gives EBADF.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(SD_LISTEN_FDS_START, &mut st) } != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFSOCK {
        return Err("LISTEN_FDS=1 but descriptor 3 is not a socket".into());
    }
    // SAFETY: systemd hands this descriptor to us alone (LISTEN_PID is ours); we take ownership.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(SD_LISTEN_FDS_START) };
    listener.local_addr().map_err(|e| format!("descriptor 3 is not a TCP listening socket: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| format!("descriptor 3: {e}"))?;
    // Keep it from leaking into anything qcc runs.
    // SAFETY: setting FD_CLOEXEC on a descriptor we own.
    unsafe { libc::fcntl(SD_LISTEN_FDS_START, libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(Some(listener))
}
