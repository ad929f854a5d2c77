//! MQTT over WebSocket (tungstenite), on plain TCP or TLS.
//!
//! The upgrade request is read by our own bounded HTTP head reader ([`super::http`]) so an
//! oversized or wrong request gets a real answer (431, 404, 400, 426) instead of a dropped
//! connection; [`upgrade`] checks it and writes the `101` answer, then [`WsStream`] wraps the
//! transport in a tungstenite `WebSocket` (server role) and presents plain MQTT bytes:
//! binary messages are a byte stream (an MQTT packet may span messages, a message may hold
//! several packets [MQTT-6.0.0-2]), pings are answered by tungstenite, a close frame is end of
//! stream, and a text frame closes the connection [MQTT-6.0.0-1]. Each write becomes one binary
//! frame.

use super::http::{self, Head};
use std::io::{self, ErrorKind, Read, Write};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// Largest payload of one outgoing frame; a longer write is split over calls.
const MAX_OUT_FRAME: usize = 16 * 1024;

/// The outcome of checking an upgrade request.
#[derive(Debug, PartialEq, Eq)]
pub enum Upgrade {
    /// Accepted: write this `101 Switching Protocols` response, then speak WebSocket.
    Accept(Vec<u8>),
    /// Refused: write this response and close.
    Refuse(Vec<u8>),
}

/// Checks a WebSocket upgrade request for `path`: the path must match (else 404), it must be a
/// `GET` upgrade to `websocket` with a key (else 400; 426 when it is no upgrade at all), version
/// 13 (else 426 with `Sec-WebSocket-Version: 13`, RFC 6455 §4.4) and must offer the `mqtt`
/// subprotocol [MQTT-6.0.0-3] (else 400: we will not select a protocol the client did not offer,
/// and an MQTT server must select `mqtt` [MQTT-6.0.0-4]).
pub fn upgrade(head: &Head, path: &str) -> Upgrade {
    let refuse = |code, reason: &str, extra: &[(&str, &str)], msg: &str| {
        Upgrade::Refuse(http::response(code, reason, extra, "text/plain", msg.as_bytes()))
    };
    if head.path != path {
        return refuse(404, "Not Found", &[], "not found\n");
    }
    if head.method != "GET" {
        return refuse(405, "Method Not Allowed", &[("Allow", "GET")], "use GET\n");
    }
    if !head.header_has_token("Upgrade", "websocket") || !head.header_has_token("Connection", "upgrade") {
        return refuse(426, "Upgrade Required", &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")], "websocket only\n");
    }
    if head.header("Sec-WebSocket-Version").map(str::trim) != Some("13") {
        return refuse(426, "Upgrade Required", &[("Sec-WebSocket-Version", "13")], "websocket version 13 only\n");
    }
    let Some(key) = head.header("Sec-WebSocket-Key").filter(|k| !k.is_empty()) else {
        return refuse(400, "Bad Request", &[], "missing Sec-WebSocket-Key\n");
    };
    if !head.header_has_token("Sec-WebSocket-Protocol", "mqtt") {
        return refuse(400, "Bad Request", &[], "the mqtt subprotocol is required\n");
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    Upgrade::Accept(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
        )
        .into_bytes(),
    )
}

/// The WebSocket settings for a connection whose MQTT packets are at most `max_packet` bytes:
/// a message may carry a packet and a bit more; frames are written out at once
/// (`write_buffer_size` 0) and at most one frame waits for the socket.
pub fn config(max_packet: usize) -> WebSocketConfig {
    let max_message = max_packet.max(64 * 1024) + 64 * 1024;
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * MAX_OUT_FRAME)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// A connection's WebSocket settings before and after its CONNECT has arrived.
#[derive(Clone, Copy, Debug)]
pub struct Configs {
    /// From CONNECT on: [`config`].
    pub after_connect: WebSocketConfig,
    /// Until CONNECT, messages and frames are at most this long (`max_connect_size`): a peer
    /// that never sends a CONNECT cannot make tungstenite hold more.
    pub before_connect_limit: usize,
}

impl Configs {
    /// The settings until CONNECT: `after_connect` with the smaller message and frame limit.
    pub fn before_connect(&self) -> WebSocketConfig {
        let limit = Some(self.before_connect_limit);
        self.after_connect.max_message_size(limit).max_frame_size(limit)
    }
}

/// The settings for packets of at most `max_packet` bytes and a CONNECT of at most
/// `max_connect` bytes.
pub fn configs(max_packet: usize, max_connect: usize) -> Configs {
    Configs { after_connect: config(max_packet), before_connect_limit: max_connect }
}

/// A WebSocket connection presenting the byte stream carried in its binary messages.
pub struct WsStream<S> {
    ws: WebSocket<S>,
    /// The rest of the last binary message not yet read.
    rx: tungstenite::Bytes,
    /// The settings to switch to at CONNECT ([`WsStream::connected`]); `None` once done.
    after_connect: Option<WebSocketConfig>,
    /// The connection's place among its listener's `max_handshakes`, until CONNECT.
    pub(crate) ticket: Option<super::ticket::Ticket>,
}

impl<S> core::fmt::Debug for WsStream<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WsStream").field("pending", &self.rx.len()).finish()
    }
}

fn ws_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(ErrorKind::NotConnected, "websocket closed")
        }
        other => io::Error::new(ErrorKind::InvalidData, other.to_string()),
    }
}

impl<S: Read + Write> WsStream<S> {
    /// Wraps a transport whose upgrade was answered; `already_read` are bytes that arrived after
    /// the request head (the first frames, if the client did not wait for the `101`).
    /// Messages and frames are held to `config.before_connect_limit` until
    /// [`WsStream::connected`].
    pub fn new(inner: S, already_read: Vec<u8>, config: Configs) -> WsStream<S> {
        let ws = WebSocket::from_partially_read(inner, already_read, Role::Server, Some(config.before_connect()));
        WsStream { ws, rx: tungstenite::Bytes::new(), after_connect: Some(config.after_connect), ticket: None }
    }

    /// The connection's CONNECT has arrived: messages and frames may be as large as packets
    /// are, and the listener's place is given back.
    pub fn connected(&mut self) {
        self.ticket = None;
        if let Some(after) = self.after_connect.take() {
            self.ws.set_config(|c| *c = after);
        }
    }

    /// The transport below.
    pub fn get_mut(&mut self) -> &mut S {
        self.ws.get_mut()
    }

    /// Writes what tungstenite holds (pongs, a partly written frame): `Ok(true)` when nothing
    /// is left, `Ok(false)` when the socket is full.
    pub fn flush_ws(&mut self) -> io::Result<bool> {
        match self.ws.flush() {
            Ok(()) => Ok(true),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(ws_error(e)),
        }
    }

    /// Sends a close frame (best effort, never blocks).
    pub fn close(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}

impl<S: Read + Write> Read for WsStream<S> {
    /// MQTT bytes from binary messages; `Ok(0)` at a close frame or end of stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.rx.is_empty() {
                let n = buf.len().min(self.rx.len());
                buf[..n].copy_from_slice(&self.rx[..n]);
                let _ = self.rx.split_to(n);
                return Ok(n);
            }
            match self.ws.read() {
                Ok(Message::Binary(b)) => self.rx = b,
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {}
                Ok(Message::Close(_)) => {
                    let _ = self.ws.flush();
                    return Ok(0);
                }
                Ok(Message::Text(_)) => {
                    return Err(io::Error::new(ErrorKind::InvalidData, "[MQTT-6.0.0-1] text frame on an MQTT websocket"))
                }
                Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => return Ok(0),
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(ws_error(e)),
            }
        }
    }
}

impl<S: Read + Write> Write for WsStream<S> {
    /// One binary frame of up to 16 KiB of `buf`. `WouldBlock` while an earlier frame still
    /// waits for the socket (at most one frame is held back).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.flush_ws()? {
            return Err(ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(MAX_OUT_FRAME);
        match self.ws.write(Message::Binary(tungstenite::Bytes::copy_from_slice(&buf[..n]))) {
            Ok(()) => Ok(n),
            // The frame is buffered; the rest goes out on the next writable edge.
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(n),
            Err(tungstenite::Error::WriteBufferFull(_)) => Err(ErrorKind::WouldBlock.into()),
            Err(e) => Err(ws_error(e)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.flush_ws()? {
            Ok(())
        } else {
            Err(ErrorKind::WouldBlock.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(req: &str) -> Head {
        http::parse_head(req.as_bytes()).unwrap().unwrap().0
    }

    const GOOD: &str = "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqttv3.1, mqtt\r\n\r\n";

    fn status(u: Upgrade) -> String {
        let bytes = match u {
            Upgrade::Accept(b) | Upgrade::Refuse(b) => b,
        };
        String::from_utf8(bytes).unwrap().lines().next().unwrap().to_string()
    }

    #[test]
    fn a_good_upgrade_selects_mqtt_with_the_rfc_accept_key() {
        let Upgrade::Accept(resp) = upgrade(&head(GOOD), "/mqtt") else { panic!() };
        let resp = String::from_utf8(resp).unwrap();
        // RFC 6455 §1.3 sample key and answer.
        assert!(resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{resp}");
        assert!(resp.contains("Sec-WebSocket-Protocol: mqtt\r\n"));
    }

    #[test]
    fn refusals_carry_their_status() {
        assert_eq!(status(upgrade(&head(GOOD), "/other")), "HTTP/1.1 404 Not Found");
        let no_mqtt = GOOD.replace("mqttv3.1, mqtt", "chat");
        assert_eq!(status(upgrade(&head(&no_mqtt), "/mqtt")), "HTTP/1.1 400 Bad Request");
        let no_proto = GOOD.replace("Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\n", "");
        assert_eq!(status(upgrade(&head(&no_proto), "/mqtt")), "HTTP/1.1 400 Bad Request");
        let v8 = GOOD.replace("Version: 13", "Version: 8");
        assert_eq!(status(upgrade(&head(&v8), "/mqtt")), "HTTP/1.1 426 Upgrade Required");
        assert_eq!(status(upgrade(&head("GET /mqtt HTTP/1.1\r\n\r\n"), "/mqtt")), "HTTP/1.1 426 Upgrade Required");
        let no_key = GOOD.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
        assert_eq!(status(upgrade(&head(&no_key), "/mqtt")), "HTTP/1.1 400 Bad Request");
    }
}
