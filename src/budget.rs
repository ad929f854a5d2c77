//! A byte budget shared by every client: what all sessions may hold together of one kind of
//! state (queued and inflight messages, subscriptions, wills, topic aliases), where a bound per
//! session multiplied by `max_sessions` would add up to far more than the device has.
//!
//! Plain data, no I/O: the broker takes bytes when a client asks it to hold something and gives
//! the same number back when that thing goes. A request that does not fit is refused by the
//! caller, which applies the policy (a reason code, a drop) and counts it: capacity is a value,
//! not a panic.

/// What one heap allocation costs beyond the bytes asked for, at most: glibc's malloc adds an
/// 8-byte header, rounds up to 16-byte granules and hands out 32 bytes at least, so a short
/// string costs up to 32 bytes more than its length. The costs of the byte budgets add it to
/// every allocation a client chooses the size of.
pub const HEAP_HEADER: usize = 32;

use core::mem::size_of;

/// Commands the `Handle` channel holds before `Handle` calls fail with `HandleError::Full`.
pub const COMMAND_CAPACITY: usize = 1024;

/// Bytes of one command in the `Handle` channel with its slot stamp, at most (a test in
/// `server` holds the real size to it).
pub const COMMAND_SLOT: usize = 64;

/// Failed-authentication addresses the throttle tracks at most (`hooks::throttle`).
pub const AUTH_THROTTLE_ADDRESSES: usize = 1024;

/// Bytes of one `Message` (the broker's shared message), at most (a test in `broker` holds the
/// real size to it).
pub const MESSAGE_SIZE: usize = 136;

/// The fixed part of `Message::cost`: the message itself and its reference counts, whatever
/// the size of what it points to.
pub const MESSAGE_OVERHEAD: usize = MESSAGE_SIZE + 2 * size_of::<usize>();

/// Bytes of one `session::Delivery`, at most (a test in `broker::message` holds the real size to it).
pub const DELIVERY_SIZE: usize = 40;

/// What one connection costs besides its buffers, user name and topic aliases: its slot in the
/// connection table (192 bytes, twice for growth), its boxed rarely used state (136 bytes),
/// the server's stream slot and scratch lists, its timer entries and a remote address too long
/// to be kept inline (IPv6). Measured sizes on 64-bit targets, rounded up.
pub const PER_CONNECTION: usize = 832;

/// What one session costs besides its client identifier, subscriptions, queue, will and
/// inbound QoS 2 identifiers: its slot in the session table (80 bytes, twice for growth), its
/// client-id index slots, its boxed queue and window headers and rarely used state, its timer
/// entries and its entry in the routing scratch. Measured sizes on 64-bit targets, rounded up.
pub const PER_SESSION: usize = 576;

/// What an `Rc<str>` shared by a connection, its session and the client-id index costs beyond
/// its bytes: the allocation and the two reference counts.
pub const SHARED_STR: usize = HEAP_HEADER + 2 * size_of::<usize>();

/// One inbound QoS 2 packet identifier awaiting PUBREL: 2 bytes (a `PacketId`) in a sorted `Vec`, twice for
/// growth.
pub const QOS2_ID: usize = 2 * size_of::<u16>();

/// One retained message matched by a SUBSCRIBE, held until the SUBACK is out: a delivery slot
/// in a `Vec`, twice for growth.
pub const RETAINED_MATCH: usize = 2 * DELIVERY_SIZE;

/// What does not grow with any bound: the server's 64 KiB read scratch, the failed-auth throttle
/// table ([`AUTH_THROTTLE_ADDRESSES`] addresses at about 64 bytes each in a hash
/// map) and the timer heap's slack. Rounded up.
pub const FIXED: usize = 64 * 1024 + AUTH_THROTTLE_ADDRESSES * 64 + 64 * 1024;

/// One chunk list kept in the pool of output chunk lists (`Options::pool_capacity` of
/// them, of at most 8 slots each).
pub const POOLED_LIST: usize = 8 * size_of::<Vec<u8>>() + HEAP_HEADER;

/// The output chunk list of one connection: `write_chunks` chunks plus the one started past
/// them, in a `Vec` grown by doubling.
pub const fn output_list(write_chunks: usize) -> usize {
    (write_chunks + 1).next_power_of_two() * size_of::<Vec<u8>>()
}

/// The `Handle` channel's [`COMMAND_CAPACITY`] slots: a command and its slot stamp each (at
/// most [`COMMAND_SLOT`] bytes, held to the real size by a test in `server`), plus two
/// allocations a command may own (a topic and a payload).
pub const fn command_slots() -> usize {
    COMMAND_CAPACITY * (COMMAND_SLOT + 2 * HEAP_HEADER)
}
/// Bytes in use out of a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    used: usize,
    limit: usize,
}

impl Budget {
    /// An empty budget of `limit` bytes.
    pub const fn new(limit: usize) -> Budget {
        Budget { used: 0, limit }
    }

    /// Bytes in use.
    pub const fn used(&self) -> usize {
        self.used
    }

    /// The limit.
    pub const fn limit(&self) -> usize {
        self.limit
    }

    /// Whether `n` more bytes fit.
    pub fn fits(&self, n: usize) -> bool {
        self.used.checked_add(n).is_some_and(|t| t <= self.limit)
    }

    /// Whether something of `new` bytes fits once something of `old` bytes has gone.
    pub fn fits_replacing(&self, old: usize, new: usize) -> bool {
        self.used.saturating_sub(old).checked_add(new).is_some_and(|t| t <= self.limit)
    }

    /// Takes `n` bytes when they fit; takes nothing and returns false when they do not.
    #[must_use]
    pub fn take(&mut self, n: usize) -> bool {
        if !self.fits(n) {
            return false;
        }
        self.used += n;
        true
    }

    /// Takes `n` bytes whether they fit or not: for state that only moves (a delivery taken
    /// from a queue into the inflight window gives its bytes back and takes them again).
    pub fn force(&mut self, n: usize) {
        self.used = self.used.saturating_add(n);
    }

    /// Gives `n` bytes back.
    pub fn give(&mut self, n: usize) {
        debug_assert!(n <= self.used, "budget: {n} bytes given back, {} in use", self.used);
        self.used = self.used.saturating_sub(n);
    }

    /// Replaces something of `old` bytes by something of `new` bytes when the result fits;
    /// changes nothing and returns false when it does not.
    #[must_use]
    pub fn swap(&mut self, old: usize, new: usize) -> bool {
        let rest = self.used.saturating_sub(old);
        if rest.checked_add(new).is_none_or(|t| t > self.limit) {
            return false;
        }
        self.used = rest + new;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn a_budget_takes_what_fits_and_gets_it_back() {
        let mut b = Budget::new(100);
        assert!(b.take(60));
        assert!(!b.take(41), "over the limit: nothing taken");
        assert_eq!(b.used(), 60);
        assert!(b.take(40));
        assert!(!b.fits(1));
        b.give(60);
        assert!(b.swap(40, 90), "the old 40 go, the new 90 fit");
        assert!(!b.swap(0, 11));
        assert_eq!(b.used(), 90);
        b.force(20);
        assert_eq!(b.used(), 110, "a move may pass the limit for a moment");
        assert!(!b.fits(0));
        b.give(110);
        assert_eq!(b, Budget::new(100));
        let mut huge = Budget::new(usize::MAX);
        assert!(huge.take(usize::MAX) && !huge.take(1), "no overflow at the top");
    }
}
