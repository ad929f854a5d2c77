//! Wire primitives: a checked reader over a byte slice, the [`Writer`] trait, variable byte
//! integers, and the MQTT string rules. Reading never panics: every read is bounds-checked.

use super::error::{DecodeError, EncodeError};

/// Largest value a variable byte integer can hold (4 bytes).
pub const VARINT_MAX: u32 = 268_435_455;

/// Where encoders write. Callers size first with `encoded_len()`, so writes never fail.
pub trait Writer {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);

    /// Appends one byte.
    fn put_u8(&mut self, b: u8) {
        self.put(&[b]);
    }
}

impl Writer for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn put_u8(&mut self, b: u8) {
        self.push(b);
    }
}

/// Number of bytes the variable byte integer encoding of `v` takes (1 to 4).
pub const fn varint_len(v: u32) -> usize {
    if v < 128 {
        1
    } else if v < 16_384 {
        2
    } else if v < 2_097_152 {
        3
    } else {
        4
    }
}

/// Writes `v` (at most [`VARINT_MAX`]) as a variable byte integer.
pub fn put_varint(w: &mut impl Writer, mut v: u32) {
    let mut buf = [0u8; 4];
    let mut n = 0;
    loop {
        let mut byte = (v % 128) as u8;
        v /= 128;
        if v > 0 {
            byte |= 0x80;
        }
        buf[n] = byte;
        n += 1;
        if v == 0 || n == 4 {
            break;
        }
    }
    w.put(&buf[..n]);
}

/// Reads a variable byte integer from the start of `buf`: `Ok(None)` when more bytes are needed,
/// the value and its length otherwise. [MQTT-1.5.5-1] more than 4 bytes is malformed, and so is
/// an encoding longer than the value needs (a last byte of 0x00 after a continuation byte).
pub fn read_varint(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(i) else { return Ok(None) };
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // [MQTT-1.5.5-1] "The encoded value MUST use the minimum number of bytes necessary
            // to represent the value": a trailing zero byte adds nothing.
            if b == 0 && i > 0 {
                return Err(DecodeError::BadVarInt);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    Err(DecodeError::BadVarInt)
}

/// Writes a big-endian u16.
pub fn put_u16(w: &mut impl Writer, v: u16) {
    w.put(&v.to_be_bytes());
}

/// Writes a big-endian u32.
pub fn put_u32(w: &mut impl Writer, v: u32) {
    w.put(&v.to_be_bytes());
}

/// Writes length-prefixed binary data (or a string's bytes).
pub fn put_bin(w: &mut impl Writer, b: &[u8]) {
    put_u16(w, b.len() as u16);
    w.put(b);
}

/// Checks that a field fits a two-byte length prefix.
pub fn check_field(b: &[u8]) -> Result<(), EncodeError> {
    if b.len() > u16::MAX as usize {
        Err(EncodeError::FieldTooLong)
    } else {
        Ok(())
    }
}

/// Checks the MQTT string rules on already-valid Rust UTF-8: no U+0000 [MQTT-1.5.4-2].
/// (Rust strings cannot hold surrogates, so [MQTT-1.5.4-1] holds by construction.)
pub fn check_mqtt_str(s: &str) -> Result<(), DecodeError> {
    if s.as_bytes().contains(&0) {
        Err(DecodeError::NullCharacter)
    } else {
        Ok(())
    }
}

/// A checked cursor over one packet's bytes. Running past the end is [`DecodeError::BadLength`].
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Reads `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::BadLength);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads every remaining byte.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a big-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a variable byte integer; truncation is [`DecodeError::BadLength`].
    pub fn varint(&mut self) -> Result<u32, DecodeError> {
        match read_varint(&self.buf[self.pos..])? {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => Err(DecodeError::BadLength),
        }
    }

    /// Reads length-prefixed binary data.
    pub fn bin(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u16()? as usize;
        self.take(n)
    }

    /// Reads a length-prefixed UTF-8 string and applies the MQTT string rules.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let b = self.bin()?;
        let s = core::str::from_utf8(b).map_err(|_| DecodeError::InvalidUtf8)?;
        check_mqtt_str(s)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_varint_boundary_round_trips_with_its_length() {
        for &(v, len) in &[
            (0u32, 1usize),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (2_097_151, 3),
            (2_097_152, 4),
            (VARINT_MAX, 4),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), len, "length of {v}");
            assert_eq!(varint_len(v), len);
            assert_eq!(read_varint(&out), Ok(Some((v, len))));
            // every strict prefix asks for more bytes
            for cut in 0..len {
                assert_eq!(read_varint(&out[..cut]), Ok(None));
            }
        }
    }

    #[test]
    fn spec_examples_of_varints_decode() {
        assert_eq!(read_varint(&[0x00]), Ok(Some((0, 1))));
        assert_eq!(read_varint(&[0x7f]), Ok(Some((127, 1))));
        assert_eq!(read_varint(&[0x80, 0x01]), Ok(Some((128, 2))));
        assert_eq!(read_varint(&[0xff, 0x7f]), Ok(Some((16_383, 2))));
        assert_eq!(read_varint(&[0x80, 0x80, 0x01]), Ok(Some((16_384, 3))));
        assert_eq!(read_varint(&[0xff, 0xff, 0x7f]), Ok(Some((2_097_151, 3))));
        assert_eq!(read_varint(&[0x80, 0x80, 0x80, 0x01]), Ok(Some((2_097_152, 4))));
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0x7f]), Ok(Some((VARINT_MAX, 4))));
    }

    #[test]
    fn a_varint_longer_than_its_value_needs_is_malformed() {
        assert_eq!(read_varint(&[0x80, 0x00]), Err(DecodeError::BadVarInt));
        assert_eq!(read_varint(&[0xff, 0x80, 0x00]), Err(DecodeError::BadVarInt));
        assert_eq!(read_varint(&[0x80, 0x80, 0x80, 0x00]), Err(DecodeError::BadVarInt));
        // a zero that is the whole encoding is the shortest form of 0
        assert_eq!(read_varint(&[0x00]), Ok(Some((0, 1))));
    }

    #[test]
    fn a_fifth_varint_byte_is_malformed() {
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x01]), Err(DecodeError::BadVarInt));
        assert_eq!(read_varint(&[0x80, 0x80, 0x80, 0x80]), Err(DecodeError::BadVarInt));
    }

    #[test]
    fn strings_with_nul_or_bad_utf8_are_refused() {
        assert_eq!(Reader::new(&[0, 3, b'a', 0, b'b']).str(), Err(DecodeError::NullCharacter));
        // U+D800 encoded as CESU bytes ED A0 80 is not UTF-8
        assert_eq!(Reader::new(&[0, 3, 0xed, 0xa0, 0x80]).str(), Err(DecodeError::InvalidUtf8));
        assert_eq!(Reader::new(&[0, 3, b'a']).str(), Err(DecodeError::BadLength));
        assert_eq!(Reader::new(&[0, 2, b'o', b'k']).str(), Ok("ok"));
    }
}
