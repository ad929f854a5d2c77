//! Identities everyone shares, in a room of their own so that sessions, the broker and the
//! server name a connection without importing each other.

/// A connection's identity: slot and generation, so a stale id never reaches a reused slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId {
    /// Slot index.
    pub slot: u16,
    /// Generation of the slot when this connection took it.
    pub gen: u16,
}

impl ClientId {
    /// Packs into a `u32` (fits a mio token on 32-bit targets).
    pub const fn to_u32(self) -> u32 {
        (self.gen as u32) << 16 | self.slot as u32
    }

    /// Unpacks [`ClientId::to_u32`].
    pub const fn from_u32(v: u32) -> ClientId {
        ClientId { slot: v as u16, gen: (v >> 16) as u16 }
    }
}
