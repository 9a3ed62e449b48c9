//! A client connection. Owned by the loop's client slab (`EventLoop::clients`); its request in
//! progress (`ClientPhase::Exchange`) is owned by it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::exchange::Exchange;
use crate::http::HeadScan;
use crate::proxy::event::io::OutBuf;

/// Stop reading an upstream while this much is waiting to be written to its client.
pub const CLIENT_OUT_HIGH: usize = 256 * 1024;
/// How long a request may wait for the disk thread before it is answered 503.
pub const DISK_WAIT: Duration = Duration::from_secs(10);
/// Replies the proxy makes itself (`/_qcc/*`, `/metrics`) still unread by their clients, all
/// connections together: past this a new one is refused with 503.
pub const LOCAL_REPLIES_MAX: usize = 8 * 1024 * 1024;
/// A connection we are closing gets this long to take its last bytes.
pub const LINGER: Duration = Duration::from_secs(5);
/// A new connection that has not sent a byte is closed after this (a flood of silent sockets
/// must not hold the connection slots for the whole `--header-timeout`).
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Client {
    pub sock: TcpStream,
    pub peer: SocketAddr,
    pub can_read: bool,
    pub can_write: bool,
    /// Bytes read and not yet consumed: a head in progress, or the next pipelined request.
    pub inbuf: Vec<u8>,
    /// How far `inbuf` was searched for the end of a request head.
    pub head_scan: HeadScan,
    pub out: OutBuf,
    pub phase: ClientPhase,
    /// When the current head started arriving, or the connection went idle.
    pub since: Instant,
    /// Our side is shut down for writing (closing: we wait for the client's EOF so our last
    /// response is not destroyed by a reset).
    pub write_shut: bool,
    /// The client's last request (`Connection: close`, or HTTP/1.0 without keep-alive) was read
    /// to its end: closing needs no half-close and wait (the close sends a FIN, nothing unread).
    pub peer_done: bool,
    /// The peer's EOF (or an error) was signalled by an event: read until it shows.
    pub hup: bool,
    /// Request heads read on this connection so far.
    pub heads: u32,
    /// When the client last took bytes we had queued for it (or nothing was queued).
    pub last_taken: Instant,
    /// Close with a reset (RST) once what is queued is written: the end of a truncated
    /// until-close response must not look like its end.
    pub reset: bool,
    /// The request being answered is a `HEAD`: a reply qcc makes itself carries no body.
    pub answering_head: bool,
}

impl Client {
    /// Idle between requests (or never used): the connection to give up first when all slots
    /// are taken.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, ClientPhase::ReadingHead) && self.inbuf.is_empty() && self.out.is_empty()
    }
}

pub enum ClientPhase {
    /// Waiting for (the rest of) a request head.
    ReadingHead,
    Exchange(Box<Exchange>),
    /// A request the proxy answers itself once the disk thread has done its part (a reload, a
    /// dashboard edit); nothing more is read meanwhile. `keep_alive`: the request's wish.
    Waiting {
        keep_alive: bool,
    },
    /// Flush what is queued, then close.
    Closing,
}
