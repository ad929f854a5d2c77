//! A listener's places for connections that hold transport state outside the broker's buffer
//! budget (TLS and WebSocket until CONNECT, HTTP stats until answered): `max_handshakes` each.
//! A leaf room: the transports hold a [`Ticket`], the pending connections take them.

use std::cell::Cell;
use std::rc::Rc;

/// A listener's count of connections that hold transport state outside the broker's buffer
/// budget: from accept until their CONNECT has arrived (TLS, WebSocket) or their request is
/// answered (HTTP stats). At most `max_handshakes`: a connection that finds them all taken is
/// closed at once. Clones share the count.
#[derive(Clone, Debug)]
pub struct Tickets {
    held: Rc<Cell<usize>>,
    max: usize,
}

impl Tickets {
    /// A count of at most `max` (`max_handshakes`).
    pub fn new(max: usize) -> Tickets {
        Tickets { held: Rc::new(Cell::new(0)), max }
    }

    /// One place, if one is free.
    pub fn take(&self) -> Option<Ticket> {
        let n = self.held.get();
        if n >= self.max {
            return None;
        }
        self.held.set(n + 1);
        Some(Ticket(self.held.clone()))
    }

    /// Places in all (`max_handshakes`).
    pub fn max(&self) -> usize {
        self.max
    }

    /// Places taken.
    pub fn held(&self) -> usize {
        self.held.get()
    }
}

/// One connection's place among its listener's [`Tickets`], given back when dropped (the
/// connection closed, or `Stream::connected` was called).
#[derive(Debug)]
pub struct Ticket(Rc<Cell<usize>>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

