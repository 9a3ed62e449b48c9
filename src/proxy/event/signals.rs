//! Signals reach the loop through a self-pipe registered with mio: the handler only writes
//! the signal number to the pipe (async-signal-safe), the loop reads it like any other event.
//! No state is shared with the handler except the pipe's file descriptor.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use mio::unix::pipe;

/// Write end of the self-pipe, for the handler. -1 until installed.
static PIPE_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: drain and exit.
    Stop,
    /// SIGHUP: re-read the cluster from the config file.
    Reload,
}

/// This thread's `errno` (the handler must leave it as it found it).
#[cfg(any(target_os = "linux", target_os = "android"))]
unsafe fn errno() -> *mut libc::c_int {
    libc::__errno_location()
}
#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
unsafe fn errno() -> *mut libc::c_int {
    libc::__error()
}

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; errno is saved and restored around it.
        unsafe {
            let saved = *errno();
            let byte = sig as u8;
            libc::write(fd, &byte as *const u8 as *const libc::c_void, 1);
            *errno() = saved;
        }
    }
}

/// Install handlers for SIGTERM, SIGINT and SIGHUP; returns the pipe's read end to register.
pub fn install() -> io::Result<pipe::Receiver> {
    let (tx, rx) = pipe::new()?;
    PIPE_WRITE_FD.store(tx.as_raw_fd(), Ordering::Relaxed);
    // The write end must stay open for the life of the process.
    std::mem::forget(tx);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction with a plain handler and SA_RESTART is valid; the handler
        // only touches the atomic and write(2).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    // A broken client socket must be an error return, not a process kill; so must a write past
    // a file-size limit (`LimitFSIZE=`, `ulimit -f`): EFBIG, handled like a full disk.
    // SAFETY: ignoring SIGPIPE and SIGXFSZ is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    Ok(rx)
}

/// Read every pending signal from the pipe.
pub fn drain(rx: &mut pipe::Receiver) -> Vec<Signal> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match rx.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                for &b in &buf[..n] {
                    match b as libc::c_int {
                        libc::SIGHUP => out.push(Signal::Reload),
                        libc::SIGTERM | libc::SIGINT => out.push(Signal::Stop),
                        _ => {}
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    out
}
