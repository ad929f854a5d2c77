//! Time as a value: milliseconds since the server started.
//!
//! Nothing outside `server/` reads a clock. The core is handed an [`Instant`] with every call and
//! answers with the next deadline it cares about, so every scenario is deterministic in tests.

use core::ops::{Add, Sub};

/// A point in time: milliseconds since an arbitrary epoch (the server's start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

/// A span of time in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant(0);

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> u64 {
        self.0
    }

    /// The low 32 bits of the milliseconds: a compact stamp for spans under 24 days, compared
    /// with [`Instant::ms_since_low32`] (wrapping arithmetic).
    pub const fn low32(self) -> u32 {
        self.0 as u32
    }

    /// Milliseconds from a [`Instant::low32`] stamp taken at most 24 days ago to `self`.
    pub const fn ms_since_low32(self, stamp: u32) -> u32 {
        (self.0 as u32).wrapping_sub(stamp)
    }

    /// Time from `earlier` to `self`, zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    /// Zero length.
    pub const ZERO: Duration = Duration(0);

    /// From whole seconds.
    pub const fn from_secs(s: u64) -> Duration {
        Duration(s.saturating_mul(1000))
    }

    /// From milliseconds.
    pub const fn from_millis(ms: u64) -> Duration {
        Duration(ms)
    }

    /// Whole milliseconds.
    pub const fn millis(self) -> u64 {
        self.0
    }

    /// Whole seconds, rounded down.
    pub const fn secs(self) -> u64 {
        self.0 / 1000
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d.0))
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        std::time::Duration::from_millis(d.0)
    }
}
