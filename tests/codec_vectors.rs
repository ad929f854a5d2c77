//! Every vector in `tests/vectors/packets/*.hex` is decoded; valid ones must re-encode
//! byte-for-byte, malformed ones must give the expected `DecodeError` and reason code, and
//! incomplete ones must ask for more bytes. The format is described in
//! `tests/vectors/packets/README.md`.

use edgemq::packets::{decode, Packet, Version};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq)]
enum Expect {
    /// Decodes; re-encodes to the same bytes unless `canonical` is false.
    Valid { canonical: bool },
    /// `Ok(None)`: more bytes are needed.
    Incomplete,
    /// `Err(e)` with `format!("{e:?}")` (whitespace removed) equal to `error`.
    Malformed { error: String, reason: u8 },
}

struct Vector {
    name: String,
    version: Version,
    max: u32,
    expect: Expect,
    bytes: Vec<u8>,
}

fn parse(path: &Path) -> Vector {
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let head = lines.next().unwrap();
    assert!(head.starts_with("#! "), "{name}: first line must be the `#!` header");
    let mut kv = std::collections::HashMap::new();
    for tok in head[3..].split_whitespace() {
        let (k, v) = tok.split_once('=').unwrap_or_else(|| panic!("{name}: bad header token {tok}"));
        kv.insert(k, v);
    }
    let version = match kv["version"] {
        "3.1" => Version::V3_1,
        "3.1.1" => Version::V3_1_1,
        "5.0" => Version::V5,
        other => panic!("{name}: unknown version {other}"),
    };
    let expect = match kv["valid"] {
        "yes" => Expect::Valid { canonical: kv.get("canonical") != Some(&"no") },
        "incomplete" => Expect::Incomplete,
        "no" => Expect::Malformed {
            error: kv["error"].to_string(),
            reason: u8::from_str_radix(kv["reason"].trim_start_matches("0x"), 16).unwrap(),
        },
        other => panic!("{name}: unknown valid={other}"),
    };
    let max = kv.get("max").map_or(u32::MAX, |m| m.parse().unwrap());
    let mut bytes = Vec::new();
    for line in lines {
        let data = line.split('#').next().unwrap();
        for h in data.split_whitespace() {
            bytes.push(u8::from_str_radix(h, 16).unwrap_or_else(|_| panic!("{name}: bad hex {h}")));
        }
    }
    Vector { name, version, max, expect, bytes }
}

fn vectors() -> Vec<Vector> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/packets");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .collect();
    paths.sort();
    assert!(paths.len() > 100, "expected the vector set in {}", dir.display());
    paths.iter().map(|p| parse(p)).collect()
}

fn encode(p: &Packet<'_>, v: Version) -> Vec<u8> {
    let mut out = Vec::new();
    let n = p.encode(v, &mut out).unwrap();
    assert_eq!(n, out.len(), "encode returns the bytes written");
    assert_eq!(p.encoded_len(v), out.len(), "encoded_len equals the bytes written");
    out
}

/// Checks one vector; returns a description of the failure instead of panicking so that every
/// failing vector is listed at once.
fn check(v: &Vector) -> Result<(), String> {
    let got = decode(&v.bytes, v.version, v.max);
    match (&v.expect, got) {
        (Expect::Valid { canonical }, Ok(Some((p, used)))) => {
            if used != v.bytes.len() {
                return Err(format!("used {used} of {} bytes", v.bytes.len()));
            }
            if let Packet::Connect(c) = &p {
                if c.version != v.version {
                    return Err(format!("CONNECT version {:?}, header says {:?}", c.version, v.version));
                }
            }
            let out = encode(&p, v.version);
            if *canonical && out != v.bytes {
                return Err(format!("re-encoded\n  {:02x?}\nexpected\n  {:02x?}", out, v.bytes));
            }
            let (q, _) = decode(&out, v.version, u32::MAX)
                .map_err(|e| format!("re-encoding does not decode: {e:?}"))?
                .ok_or("re-encoding is incomplete")?;
            if q != p {
                return Err(format!("re-decoded {q:?} != {p:?}"));
            }
            // "need more bytes" is never an error: every strict prefix of a valid frame is Ok(None)
            for cut in 0..v.bytes.len() {
                if decode(&v.bytes[..cut], v.version, v.max) != Ok(None) {
                    return Err(format!("prefix of {cut} bytes is not Ok(None)"));
                }
            }
            Ok(())
        }
        (Expect::Incomplete, Ok(None)) => Ok(()),
        (Expect::Malformed { error, reason }, Err(e)) => {
            let got: String = format!("{e:?}").split_whitespace().collect();
            if &got != error {
                return Err(format!("error {got}, expected {error}"));
            }
            if e.reason_code().as_u8() != *reason {
                return Err(format!("reason 0x{:02x}, expected 0x{reason:02x}", e.reason_code().as_u8()));
            }
            Ok(())
        }
        (want, got) => Err(format!("expected {want:?}, got {got:?}")),
    }
}

#[test]
fn every_vector_decodes_as_its_header_says() {
    let failures: Vec<String> =
        vectors().iter().filter_map(|v| check(v).err().map(|e| format!("{}: {e}", v.name))).collect();
    assert!(failures.is_empty(), "{} vector(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn valid_vectors_cover_every_packet_type_in_every_version() {
    let mut seen = BTreeSet::new();
    for v in vectors() {
        if let (Expect::Valid { .. }, Ok(Some((p, _)))) = (&v.expect, decode(&v.bytes, v.version, v.max)) {
            seen.insert((v.version, p.type_id()));
        }
    }
    for version in [Version::V3_1, Version::V3_1_1, Version::V5] {
        let last = if version.is_v5() { 15 } else { 14 };
        for t in 1..=last {
            assert!(seen.contains(&(version, t)), "no valid vector of packet type {t} for {version:?}");
        }
    }
}

#[test]
fn malformed_vectors_cover_every_decode_error_variant() {
    let variants: BTreeSet<String> = vectors()
        .into_iter()
        .filter_map(|v| match v.expect {
            Expect::Malformed { error, .. } => {
                Some(error.split(['(', '{']).next().unwrap().to_string())
            }
            _ => None,
        })
        .collect();
    for want in [
        "BadVarInt",
        "PacketTooLarge",
        "ReservedPacketType",
        "BadHeaderFlags",
        "BadLength",
        "InvalidUtf8",
        "NullCharacter",
        "InvalidQoS",
        "DupOnQoS0",
        "ZeroPacketId",
        "TopicWildcard",
        "PropertyNotAllowed",
        "DuplicateProperty",
        "InvalidPropertyValue",
        "InvalidReasonCode",
        "BadProtocolName",
        "UnsupportedProtocolVersion",
        "ConnectReservedFlag",
        "WillFlags",
        "PasswordWithoutUsername",
        "NoTopicFilters",
        "BadSubscriptionOptions",
        "SubscriptionOptionValue",
        "EmptyTopic",
    ] {
        assert!(variants.contains(want), "no malformed vector expects {want}");
    }
}

#[test]
fn every_vector_file_parses_and_names_its_version_prefix() {
    for v in vectors() {
        let prefix = match v.version {
            Version::V3_1 => "v31_",
            Version::V3_1_1 => "v311_",
            Version::V5 => "v5_",
        };
        assert!(v.name.starts_with(prefix), "{} is for {:?} but not named {prefix}*", v.name, v.version);
    }
}
