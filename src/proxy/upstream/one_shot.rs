//! A connection's connect completion, and the one-request exchange of a probe or an alert:
//! connect, send, read the status line. Pure steps over one `Upstream`: no lookups.

use crate::proxy::event::io::IoOutcome;
use crate::proxy::state::Upstream;

/// Whether a connect started non-blocking has completed: `Ok(true)` connected, `Ok(false)`
/// not yet (wait for the next writable event), `Err` the reason it failed.
pub fn connect_done(up: &mut Upstream) -> Result<bool, String> {
    let sock = up.transport.socket();
    match sock.take_error() {
        Ok(Some(e)) | Err(e) => return Err(e.to_string()),
        Ok(None) => {}
    }
    match sock.peer_addr() {
        Ok(_) => {
            up.connected = true;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotConnected => {
            up.can_write = false;
            Ok(false)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A one-request exchange (a probe, an alert): connect, send `request` (`sent` bytes of it are
/// out), read the status line. `Some(Ok(status))` for the final status, `Some(Err(why))` when
/// it failed, `None` while undecided.
pub fn step(request: &[u8], sent: &mut usize, up: &mut Upstream, scratch: &mut [u8]) -> Option<Result<u16, String>> {
    if !up.connected {
        if !up.can_write {
            return None;
        }
        match connect_done(up) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(Err(format!("connect error: {e}"))),
        }
    }
    while up.can_write && *sent < request.len() {
        match up.transport.write(&request[*sent..]) {
            IoOutcome::Progress(n) => *sent += n,
            IoOutcome::WouldBlock => up.can_write = false,
            IoOutcome::Closed => return Some(Err("closed while sending".into())),
            IoOutcome::Error(e) => return Some(Err(format!("send: {e}"))),
        }
    }
    if up.can_write && up.transport.wants_write() {
        if let IoOutcome::WouldBlock = up.transport.flush() {
            up.can_write = false;
        }
    }
    while up.can_read {
        match up.transport.read(&mut up.inbuf, scratch) {
            IoOutcome::Progress(_) => {}
            IoOutcome::WouldBlock => up.can_read = false,
            IoOutcome::Closed => return Some(Err("closed before a response".into())),
            IoOutcome::Error(e) => return Some(Err(format!("read: {e}"))),
        }
        // Bounded: a head is decided (or refused) within MAX_HEAD_BYTES and MAX_INTERIM.
        match up.head.take(&mut up.inbuf, false) {
            Ok(Some(h)) => return Some(Ok(h.status)),
            Ok(None) => {}
            Err(e) => return Some(Err(format!("bad response: {e}"))),
        }
        if up.transport.wants_write() {
            let _ = up.transport.flush();
        }
    }
    None
}
