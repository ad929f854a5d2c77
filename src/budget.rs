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
