//! TLS over TCP with rustls (ring provider, TLS 1.2 and 1.3), driven non-blocking in the loop.
//!
//! [`server_config`] turns a [`TlsConfig`] (PEM file paths) into a rustls `ServerConfig`; the
//! server keeps one `Arc` per listener and swaps it on reload, so new connections use the new
//! certificates while connected clients keep theirs. [`TlsStream`] wraps a rustls
//! `ServerConnection` and its socket behind `Read`/`Write` of plaintext: reads return
//! `WouldBlock` once neither rustls nor the socket has anything, writes return `WouldBlock` while
//! earlier records still wait for the socket (back-pressure instead of unbounded buffering).
//!
//! This module never blocks and never reads a clock: the handshake timeout is the server's.

use super::TlsConfig;
use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;

fn invalid(what: &str, e: impl core::fmt::Display) -> io::Error {
    io::Error::new(ErrorKind::InvalidInput, format!("{what}: {e}"))
}

fn read_certs(path: &std::path::Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let name = path.display().to_string();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(&name, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&name, e))?;
    if certs.is_empty() {
        return Err(invalid(&name, "no CERTIFICATE in the PEM file"));
    }
    Ok(certs)
}

/// Builds the rustls server configuration from the PEM files named in `cfg`: certificate chain,
/// private key and, when `client_ca` is set, a client-certificate verifier against that CA
/// (client certificates required only with `require_client_cert`). Errors name the file.
pub fn server_config(cfg: &TlsConfig) -> io::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&cfg.cert)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| invalid(&cfg.key.display().to_string(), e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| invalid("tls versions", e))?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca)? {
                roots.add(c).map_err(|e| invalid(&ca.display().to_string(), e))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if cfg.require_client_cert { v } else { v.allow_unauthenticated() };
            builder.with_client_cert_verifier(v.build().map_err(|e| invalid(&ca.display().to_string(), e))?)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| invalid(&format!("{} / {}", cfg.cert.display(), cfg.key.display()), e))?;
    Ok(Arc::new(config))
}

/// Plaintext (and records) rustls may buffer for the socket beyond what it took: rustls' own
/// default is 64 KiB; a write waits for the socket to take the last one first anyway.
pub const BUFFER_LIMIT: usize = 16 * 1024;

/// A TLS connection: rustls state plus its TCP socket.
pub struct TlsStream {
    conn: ServerConnection,
    sock: TcpStream,
    /// The connection's place among its listener's `max_handshakes`, until CONNECT.
    pub(crate) ticket: Option<super::ticket::Ticket>,
}

impl core::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsStream").field("handshaking", &self.conn.is_handshaking()).finish()
    }
}

impl TlsStream {
    /// Starts the server side of a handshake on an accepted socket.
    pub fn new(config: Arc<ServerConfig>, sock: TcpStream) -> io::Result<TlsStream> {
        let mut conn = ServerConnection::new(config).map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        conn.set_buffer_limit(Some(BUFFER_LIMIT));
        Ok(TlsStream { conn, sock, ticket: None })
    }

    /// The TCP socket (for registration with the poller).
    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    /// Drives the handshake as far as the socket allows: `Ok(true)` when it is complete,
    /// `Ok(false)` when it waits for readiness, `Err` when the peer failed it (an alert was sent
    /// where possible) or closed.
    pub fn handshake(&mut self) -> io::Result<bool> {
        loop {
            self.flush_tls()?;
            if !self.conn.is_handshaking() {
                return Ok(true);
            }
            if !self.conn.wants_read() {
                // Only output is left and the socket is full: wait for writable.
                return Ok(false);
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return Err(io::Error::new(ErrorKind::UnexpectedEof, "peer closed during the TLS handshake")),
                Ok(_) => self.process()?,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The common name of the verified client certificate, if the peer presented one.
    pub fn peer_common_name(&self) -> Option<String> {
        let certs = self.conn.peer_certificates()?;
        subject_common_name(certs.first()?.as_ref())
    }

    /// The negotiated protocol version, once the handshake is done.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    fn process(&mut self) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(_) => Ok(()),
            Err(e) => {
                // rustls queued an alert for the peer: try to send it before giving up.
                let _ = self.flush_tls();
                Err(io::Error::new(ErrorKind::InvalidData, e))
            }
        }
    }

    /// Writes queued TLS records until none are left (`Ok(true)`) or the socket is full
    /// (`Ok(false)`).
    pub fn flush_tls(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::Error::new(ErrorKind::WriteZero, "socket accepted no TLS bytes")),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Queues close_notify and writes what the socket takes (best effort).
    pub fn close_notify(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush_tls();
    }

    /// Sends close_notify (best effort) and shuts the socket down.
    pub fn shutdown(&mut self) {
        self.close_notify();
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

impl Read for TlsStream {
    /// Plaintext, first from what rustls already decrypted (it may hold data that needs no
    /// socket read), then from the socket. `Ok(0)` after close_notify; `UnexpectedEof` when the
    /// peer closed without it.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => {
                    // End of stream: let rustls decide between a clean close and truncation.
                    self.process()?;
                    return match self.conn.reader().read(buf) {
                        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
                        other => other,
                    };
                }
                Ok(_) => {
                    self.process()?;
                    // Handshake messages after the handshake (key updates, tickets) may want
                    // an answer; a full socket just delays it to the next writable edge.
                    self.flush_tls()?;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsStream {
    /// Encrypts as much of `buf` as rustls buffers and writes records out. Returns
    /// `WouldBlock` instead of buffering more while earlier records wait for the socket.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.flush_tls()? {
            return Err(ErrorKind::WouldBlock.into());
        }
        let n = self.conn.writer().write(buf)?;
        self.flush_tls()?;
        if n == 0 {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.flush_tls()? {
            Ok(())
        } else {
            Err(ErrorKind::WouldBlock.into())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Subject common name: a minimal DER walk (x509-parser would be far bigger than this).

/// One DER element: (tag, contents, rest). Definite lengths only (DER), at most 4 length bytes.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03]; // 2.5.4.3

/// The first common name (OID 2.5.4.3) in the subject of a DER certificate, when it is a
/// UTF8String, PrintableString, IA5String or (UTF-8 valid) TeletexString. `None` for anything
/// malformed.
pub fn subject_common_name(cert: &[u8]) -> Option<String> {
    let (tag, cert, _) = der_element(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = der_element(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    let (tag, _, r) = der_element(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    // serialNumber, signature, issuer, validity: skip four elements; then subject.
    for _ in 0..4 {
        let (_, _, r) = der_element(rest)?;
        rest = r;
    }
    let (tag, mut name, _) = der_element(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    while !name.is_empty() {
        let (tag, mut rdn, r) = der_element(name)?;
        name = r;
        if tag != SET {
            return None;
        }
        while !rdn.is_empty() {
            let (tag, atv, r) = der_element(rdn)?;
            rdn = r;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, r) = der_element(atv)?;
            if tag != 0x06 || oid != OID_COMMON_NAME {
                continue;
            }
            let (tag, value, _) = der_element(r)?;
            return match tag {
                0x0c | 0x13 | 0x16 | 0x14 => core::str::from_utf8(value).ok().map(str::to_owned),
                _ => None,
            };
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if body.len() < 0x80 {
            v.push(body.len() as u8);
        } else {
            v.push(0x82);
            v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(body);
        v
    }

    fn name(attrs: &[(&[u8], u8, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (oid, tag, value) in attrs {
            let atv = [tlv(0x06, oid), tlv(*tag, value.as_bytes())].concat();
            body.extend(tlv(SET, &tlv(SEQUENCE, &atv)));
        }
        tlv(SEQUENCE, &body)
    }

    fn cert(subject: &[u8], with_version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(tlv(0xa0, &tlv(0x02, &[2])));
        }
        tbs.extend(tlv(0x02, &[1, 2, 3])); // serial
        tbs.extend(tlv(SEQUENCE, &tlv(0x06, &[0x2a, 0x86, 0x48]))); // signature alg
        tbs.extend(name(&[(OID_COMMON_NAME, 0x0c, "issuer-ca")])); // issuer
        tbs.extend(tlv(SEQUENCE, &[])); // validity
        tbs.extend_from_slice(subject);
        tbs.extend(tlv(SEQUENCE, &[])); // spki
        let body = [tlv(SEQUENCE, &tbs), tlv(SEQUENCE, &[]), tlv(0x03, &[0])].concat();
        tlv(SEQUENCE, &body)
    }

    const OID_ORG: &[u8] = &[0x55, 0x04, 0x0a];

    #[test]
    fn the_subject_common_name_is_found_after_other_attributes() {
        let subject = name(&[(OID_ORG, 0x0c, "acme"), (OID_COMMON_NAME, 0x0c, "sensor-17")]);
        assert_eq!(subject_common_name(&cert(&subject, true)).as_deref(), Some("sensor-17"));
    }

    #[test]
    fn the_issuer_common_name_is_not_taken_for_the_subject() {
        let subject = name(&[(OID_ORG, 0x13, "acme")]);
        assert_eq!(subject_common_name(&cert(&subject, true)), None);
    }

    #[test]
    fn a_printable_string_and_a_missing_version_work() {
        let subject = name(&[(OID_COMMON_NAME, 0x13, "gw1")]);
        assert_eq!(subject_common_name(&cert(&subject, false)).as_deref(), Some("gw1"));
    }

    #[test]
    fn long_lengths_are_decoded() {
        let long = "x".repeat(300);
        let subject = name(&[(OID_COMMON_NAME, 0x0c, &long)]);
        assert_eq!(subject_common_name(&cert(&subject, true)), Some(long));
    }

    #[test]
    fn truncated_or_garbage_input_gives_none_without_panicking() {
        let subject = name(&[(OID_COMMON_NAME, 0x0c, "gw1")]);
        let full = cert(&subject, true);
        for n in 0..full.len() {
            let _ = subject_common_name(&full[..n]);
        }
        for b in 0..=255u8 {
            let _ = subject_common_name(&[0x30, 0x84, b, b, b, b, b]);
            let _ = subject_common_name(&[b; 16]);
        }
        assert_eq!(subject_common_name(&[]), None);
    }
}
