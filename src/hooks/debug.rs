//! `Debug`: logs every packet in and out at debug level (a packet trace, like smoltcp's
//! tracer). Add it last so it sees packets after other hooks ran.

use super::{ClientInfo, Hook, Point, Provides};
use crate::packets::{Packet, ReasonCode};

/// Logs every packet read from and written to a client, at `debug` level, as
/// `client-id <- PACKET {...}` (in) and `client-id -> PACKET {...}` (out).
///
/// Provides nothing when debug logging is off at the time it is added, so it costs nothing
/// then.
#[derive(Clone, Copy, Debug, Default)]
pub struct Debug;

impl Hook for Debug {
    fn id(&self) -> &str {
        "debug"
    }
    fn provides(&self) -> Provides {
        if log::log_enabled!(log::Level::Debug) {
            Provides::of(&[Point::OnPacketRead, Point::OnPacketSent])
        } else {
            Provides::NONE
        }
    }
    fn on_packet_read(&mut self, client: &ClientInfo<'_>, packet: &Packet<'_>) -> Result<(), ReasonCode> {
        log::debug!("{} <- {packet:?}", who(client));
        Ok(())
    }
    fn on_packet_sent(&mut self, client: &ClientInfo<'_>, packet: &Packet<'_>, len: usize) {
        log::debug!("{} -> {packet:?} ({len} bytes)", who(client));
    }
}

fn who<'a>(client: &ClientInfo<'a>) -> &'a str {
    if client.client_id.is_empty() {
        client.remote
    } else {
        client.client_id
    }
}
