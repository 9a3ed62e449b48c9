//! The sd_notify protocol: tell systemd (`Type=notify`) that we are ready or stopping.
//! A no-op when `NOTIFY_SOCKET` is not set.

use std::os::unix::net::UnixDatagram;

/// Send one state line ("READY=1", "STOPPING=1", ...). Failures are logged, never fatal.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = UnixDatagram::unbound().and_then(|sock| {
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            // Abstract namespace socket.
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)
        } else {
            sock.send_to(state.as_bytes(), &path)
        }
    });
    if let Err(e) = result {
        log::warn!("sd_notify {state:?} to {:?} failed: {e}", path);
    }
}
