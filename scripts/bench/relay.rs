//! The floor: a single-threaded mio TCP relay that does nothing but move bytes, one upstream
//! connection per client, no HTTP parsing, no header rewriting, no accounting. It makes the same
//! four I/O syscalls per request as qcc (read the request, write it upstream, read the response,
//! write it back) and skips the read that would only say WouldBlock after a short read, as qcc does.
//! No proxy that forwards each request over TCP on this machine can beat it by much: it is the
//! ceiling `scripts/bench.sh` measures qcc, nginx and HAProxy against.
//!
//!   cargo run --release --example relay -- LISTEN_PORT UPSTREAM_PORT
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);

struct Side {
    stream: TcpStream,
    /// Bytes for this side that a write could not take yet.
    pending: Vec<u8>,
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: relay LISTEN_PORT UPSTREAM_PORT");
        std::process::exit(2);
    };
    let parse = |p: &str| -> SocketAddr {
        let port: u16 = p.parse().unwrap_or_else(|_| {
            eprintln!("relay: not a port: {p}");
            std::process::exit(2)
        });
        SocketAddr::from(([127, 0, 0, 1], port))
    };
    let upstream = parse(&upstream);
    let mut listener = TcpListener::bind(parse(&listen))?;
    let mut poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    // Slot 2k is a client, 2k+1 its upstream.
    let mut sides: Vec<Option<Side>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            if event.token() == LISTENER {
                while let Ok((mut client, _)) = listener.accept() {
                    let Ok(mut up) = TcpStream::connect(upstream) else { continue };
                    let _ = client.set_nodelay(true);
                    let _ = up.set_nodelay(true);
                    let pair = free.pop().unwrap_or_else(|| {
                        sides.push(None);
                        sides.push(None);
                        sides.len() / 2 - 1
                    });
                    let both = Interest::READABLE | Interest::WRITABLE;
                    poll.registry().register(&mut client, Token(2 * pair), both)?;
                    poll.registry().register(&mut up, Token(2 * pair + 1), both)?;
                    sides[2 * pair] = Some(Side { stream: client, pending: Vec::new() });
                    sides[2 * pair + 1] = Some(Side { stream: up, pending: Vec::new() });
                }
                continue;
            }
            let me = event.token().0;
            let peer = me ^ 1;
            let mut closed = false;
            if event.is_writable() {
                if let Some(Some(side)) = sides.get_mut(me) {
                    closed |= flush(side);
                }
            }
            if event.is_readable() || event.is_read_closed() {
                while let Some(Some(side)) = sides.get_mut(me) {
                    match side.stream.read(&mut buf) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        Ok(n) => {
                            if let Some(Some(other)) = sides.get_mut(peer) {
                                closed |= forward(other, &buf[..n]);
                            }
                            if n < buf.len() && !event.is_read_closed() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => {
                            closed = true;
                            break;
                        }
                    }
                }
            }
            if closed {
                let pair = me / 2;
                for slot in [2 * pair, 2 * pair + 1] {
                    if let Some(mut side) = sides[slot].take() {
                        let _ = poll.registry().deregister(&mut side.stream);
                    }
                }
                free.push(pair);
            }
        }
    }
}

/// Writes `data` after anything already pending (straight from the read buffer when nothing is);
/// true when the connection is broken.
fn forward(side: &mut Side, data: &[u8]) -> bool {
    if side.pending.is_empty() {
        match side.stream.write(data) {
            Ok(n) if n == data.len() => return false,
            Ok(n) => side.pending.extend_from_slice(&data[n..]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) => {
                side.pending.extend_from_slice(data)
            }
            Err(_) => return true,
        }
        return false;
    }
    side.pending.extend_from_slice(data);
    flush(side)
}

/// Writes what is pending; true when the connection is broken.
fn flush(side: &mut Side) -> bool {
    while !side.pending.is_empty() {
        match side.stream.write(&side.pending) {
            Ok(n) => {
                side.pending.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::NotConnected => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    false
}
