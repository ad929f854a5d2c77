//! The persistence edge. For now only the records: plain owned structs that a storage hook
//! returns from the `stored_*` loaders at start ([`crate::hooks::Hook::stored_clients`] and
//! friends) and that the broker restores before any client is accepted. No file I/O lives here
//! yet; the flat-file store (postcard records, fsync, torn-tail repair) comes later and will be
//! the only user of `std::fs`.

pub mod record;

pub use record::{
    ClientRecord, InflightRecord, InflightState, MessagePropsRecord, MessageRecord, RetainedRecord, SubscriptionRecord, SysInfoRecord,
    WillRecord,
};
