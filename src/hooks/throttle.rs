//! Failed authentications per remote address: the throttle in front of
//! [`Hook::on_connect_authenticate`](super::Hook::on_connect_authenticate).
//!
//! An auth hook may be expensive (the [`Ledger`](super::Ledger) runs PBKDF2, about 0.1 s per
//! attempt at 10,000 iterations on a Pi Zero class CPU) and it runs on the only thread. The
//! broker asks [`AuthThrottle::blocked`] before calling any auth hook and tells
//! [`AuthThrottle::failed`] when a CONNECT was refused for its credentials. An address that
//! failed `per_minute` times within one minute of its first failure is refused at once, without
//! asking the hooks, until that minute is over (then it starts afresh).
//!
//! Addresses are IPs without the port; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) counts as
//! its IPv4 address. Remotes that are not `ip:port` (Unix sockets, the inline client) are never
//! throttled. At most [`MAX_ADDRESSES`] addresses are tracked, so an attacker with many
//! addresses cannot grow the table: a new one first drops the addresses whose minute is over,
//! then, when none is, the one whose minute started first.

use crate::time::{Duration, Instant};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// Most remote addresses tracked at once.
pub const MAX_ADDRESSES: usize = crate::budget::AUTH_THROTTLE_ADDRESSES;

/// The span failures are counted over, from an address's first failure.
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    start: Instant,
    failures: u32,
}

impl Window {
    fn over(&self, now: Instant) -> bool {
        now.saturating_since(self.start) >= WINDOW
    }
}

/// Failed authentications per remote address, bounded to [`MAX_ADDRESSES`] addresses.
#[derive(Debug, Default)]
pub struct AuthThrottle {
    by_ip: HashMap<IpAddr, Window>,
}

impl AuthThrottle {
    /// True when `remote` has failed `per_minute` times in the minute that began with its first
    /// failure, which is not over at `now`. Never true when `per_minute` is 0 (unlimited) or
    /// `remote` is not `ip:port`.
    pub fn blocked(&self, remote: &str, per_minute: u32, now: Instant) -> bool {
        if per_minute == 0 {
            return false;
        }
        let Some(ip) = address_of(remote) else { return false };
        self.by_ip.get(&ip).is_some_and(|w| !w.over(now) && w.failures >= per_minute)
    }

    /// Counts a failed authentication from `remote` at `now` (nothing when `per_minute` is 0 or
    /// `remote` is not `ip:port`).
    pub fn failed(&mut self, remote: &str, per_minute: u32, now: Instant) {
        if per_minute == 0 {
            return;
        }
        let Some(ip) = address_of(remote) else { return };
        if let Some(w) = self.by_ip.get_mut(&ip) {
            if w.over(now) {
                *w = Window { start: now, failures: 1 };
            } else {
                w.failures = w.failures.saturating_add(1);
            }
            return;
        }
        if self.by_ip.len() >= MAX_ADDRESSES {
            self.by_ip.retain(|_, w| !w.over(now));
        }
        if self.by_ip.len() >= MAX_ADDRESSES {
            let oldest = self.by_ip.iter().min_by_key(|(_, w)| w.start).map(|(ip, _)| *ip);
            if let Some(oldest) = oldest {
                self.by_ip.remove(&oldest);
            }
        }
        self.by_ip.insert(ip, Window { start: now, failures: 1 });
    }

    /// Addresses tracked (at most [`MAX_ADDRESSES`]).
    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    /// True when no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
}

/// The IP of an `ip:port` remote, an IPv4-mapped IPv6 address as its IPv4 address; `None` for
/// anything else (a Unix socket path, the inline client's empty remote).
pub fn address_of(remote: &str) -> Option<IpAddr> {
    let ip = remote.parse::<SocketAddr>().ok()?.ip();
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;

    #[test]
    fn addresses_are_ips_without_the_port_and_mapped_ipv6_is_ipv4() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(address_of("127.0.0.1:5000"), Some(v4));
        assert_eq!(address_of("[::ffff:127.0.0.1]:6000"), Some(v4));
        assert_eq!(address_of("[::1]:1883"), Some("::1".parse().unwrap()));
        assert_eq!(address_of("/run/edgemq.sock"), None);
        assert_eq!(address_of(""), None);
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_until_its_minute_is_over() {
        let mut t = AuthThrottle::default();
        let start = Instant(5_000);
        for i in 0..3 {
            assert!(!t.blocked("10.0.0.1:1000", 3, start), "failure {i}");
            t.failed(&format!("10.0.0.1:{}", 1000 + i), 3, start + Duration(i as u64));
        }
        assert!(t.blocked("10.0.0.1:2000", 3, start + Duration(10)), "any port");
        assert!(t.blocked("[::ffff:10.0.0.1]:2000", 3, start + Duration(10)), "mapped IPv6");
        assert!(!t.blocked("10.0.0.2:1000", 3, start + Duration(10)), "another address");
        assert!(!t.blocked("10.0.0.1:2000", 4, start + Duration(10)), "a higher limit");
        assert!(!t.blocked("10.0.0.1:2000", 0, start + Duration(10)), "0 is unlimited");
        assert!(t.blocked("10.0.0.1:2000", 3, start + Duration(MINUTE - 1)));
        assert!(!t.blocked("10.0.0.1:2000", 3, start + Duration(MINUTE)), "the minute is over");
        // The next failure starts a new minute with one failure.
        t.failed("10.0.0.1:1", 3, start + Duration(MINUTE));
        assert!(!t.blocked("10.0.0.1:1", 3, start + Duration(MINUTE + 1)));
        t.failed("10.0.0.1:1", 3, start + Duration(MINUTE + 2));
        t.failed("10.0.0.1:1", 3, start + Duration(MINUTE + 3));
        assert!(t.blocked("10.0.0.1:1", 3, start + Duration(MINUTE + 4)));
    }

    #[test]
    fn nothing_is_tracked_when_unlimited_or_not_an_ip() {
        let mut t = AuthThrottle::default();
        t.failed("10.0.0.1:1", 0, Instant(0));
        t.failed("/run/edgemq.sock", 5, Instant(0));
        t.failed("", 5, Instant(0));
        assert!(t.is_empty());
    }

    #[test]
    fn the_table_is_bounded_and_drops_the_oldest_address() {
        let mut t = AuthThrottle::default();
        let ip = |i: usize| format!("10.{}.{}.{}:1", i >> 16 & 255, i >> 8 & 255, i & 255);
        // The first address fails twice (blocked at 2); then many others fail once each.
        t.failed(&ip(0), 2, Instant(0));
        t.failed(&ip(0), 2, Instant(0));
        assert!(t.blocked(&ip(0), 2, Instant(1)));
        for i in 1..MAX_ADDRESSES {
            t.failed(&ip(i), 2, Instant(i as u64));
        }
        assert_eq!(t.len(), MAX_ADDRESSES);
        assert!(t.blocked(&ip(0), 2, Instant(MAX_ADDRESSES as u64)));
        // One more: the oldest (address 0) goes, the table stays at its bound.
        t.failed(&ip(MAX_ADDRESSES), 2, Instant(MAX_ADDRESSES as u64));
        assert_eq!(t.len(), MAX_ADDRESSES);
        assert!(!t.blocked(&ip(0), 2, Instant(MAX_ADDRESSES as u64)));
        // Once their minute is over, a new address clears out every stale entry.
        t.failed(&ip(5 * MAX_ADDRESSES), 2, Instant(10 * MINUTE));
        assert_eq!(t.len(), 1);
    }
}
