//! `Ledger`: a rule ledger for authentication and access control, loadable from TOML.
//!
//! **Authentication.** `[[auth]]` rules are tried in order; the first rule whose patterns all
//! match decides (`allow = true` admits, `false` refuses). No matching rule: refused
//! (deny-all). Each pattern is optional (absent matches anything) and may use `*` for any run
//! of characters:
//! - `client`: the client identifier;
//! - `username`: the user name (an absent user name is the empty string);
//! - `password`: plaintext (compared in constant time; `*` patterns are plain glob matches) or
//!   a hash `pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>` made by
//!   [`hash_password`] / `edgemq passwd`;
//! - `remote`: the remote address; matched against both `ip:port` and the bare `ip`.
//!
//! **Cost on the event loop.** The password is checked last, only against rules whose other
//! patterns match. One check runs PBKDF2 at most once per distinct (salt, iterations, length)
//! among those rules' hashes: rules carrying the same hash (or hashes made with the same salt)
//! share one derivation, but hashes from separate `edgemq passwd` runs each have their own salt,
//! so a wrong password tried against N such rules costs N runs. A password that matched a hash
//! is remembered (as a keyed digest, never in clear; see [`Ledger::pbkdf2_runs`]), so a device
//! reconnecting with the right password costs no PBKDF2 run; a reloaded ledger starts with
//! nothing remembered. The broker's `auth_failures_per_minute` bounds the runs a
//! wrong-password flood from one address can cause.
//!
//! **Access control.** `[[acl]]` rules match `client`, `username` and `remote` the same way.
//! The first rule that matches the client and has a filter matching the topic decides:
//! - a matching `deny` filter refuses (whatever order the filters are in);
//! - otherwise a matching filter granting the access allows (`read`, `write`, `readwrite`);
//! - otherwise, if some filter matched (with the other direction), the access is refused;
//! - a matching rule with no filters at all allows everything.
//!
//! When no rule decides, `acl_default` applies (default `deny`). In filters, `%c` and `%u` stand
//! for the client identifier and user name (as in Mosquitto); a filter using them never
//! matches a client whose identifier (or user name) contains `+`, `#` or `/`, or has none.
//!
//! Subscriptions are checked once, at SUBSCRIBE, against the requested filter: a read grant
//! must cover every topic the filter can match, and a `deny` filter refuses any subscription
//! that overlaps it (so `#` is refused when `secret/#` is denied).
//!
//! ```toml
//! acl_default = "deny"
//!
//! [[auth]]
//! username = "sensor-*"
//! password = "pbkdf2-sha256$10000$c2FsdHNhbHRzYWx0c2FsdA==$..."
//! allow = true
//!
//! [[auth]]
//! remote = "127.0.0.1"
//! allow = true
//!
//! [[acl]]
//! username = "sensor-*"
//! filters = { "sensors/%c/#" = "readwrite", "config/#" = "read", "sensors/secret/#" = "deny" }
//! ```

use super::verified::Verified;
use super::{Access, ClientInfo, Hook, Point, Provides};
use crate::topics;
use ring::{hmac, pbkdf2, rand::SecureRandom};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::num::NonZeroU32;

/// What a topic filter grants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Subscribe and receive only.
    Read,
    /// Publish only.
    Write,
    /// Both.
    ReadWrite,
    /// Neither; a matching `deny` filter wins over every grant of its rule.
    #[default]
    Deny,
}

impl Permission {
    /// True when this permission grants `access`.
    pub fn grants(self, access: Access) -> bool {
        matches!((self, access), (Permission::ReadWrite, _) | (Permission::Read, Access::Read) | (Permission::Write, Access::Write))
    }
}

/// One authentication rule. Absent patterns match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRule {
    /// Client identifier pattern (`*` wildcards).
    pub client: Option<String>,
    /// User name pattern (`*` wildcards; no user name is the empty string).
    pub username: Option<String>,
    /// Password: plaintext, a `*` pattern, or a `pbkdf2-sha256$...` hash.
    pub password: Option<String>,
    /// Remote address pattern, matched against `ip:port` and `ip`.
    pub remote: Option<String>,
    /// Admit (`true`) or refuse (`false`) a client this rule matches.
    pub allow: bool,
}

/// One access control rule. Absent patterns match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRule {
    /// Client identifier pattern.
    pub client: Option<String>,
    /// User name pattern.
    pub username: Option<String>,
    /// Remote address pattern.
    pub remote: Option<String>,
    /// Topic filters (`+`, `#`, `%c`, `%u`) and what each grants.
    #[serde(default)]
    pub filters: BTreeMap<String, Permission>,
}

/// The ledger: auth rules, ACL rules and the ACL fallback. `Ledger::default()` admits nobody
/// and allows nothing. Besides its rules it holds the passwords it verified (as keyed digests),
/// which are not part of its value: clones and equality ignore them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    /// What applies when no ACL rule decides (default `deny`).
    #[serde(default)]
    pub acl_default: Permission,
    /// Authentication rules, first match wins.
    #[serde(default)]
    pub auth: Vec<AuthRule>,
    /// Access control rules, in order.
    #[serde(default)]
    pub acl: Vec<AclRule>,
    /// Verdicts of passwords against the auth rules' hashes, and the PBKDF2 runs so far.
    #[serde(skip)]
    verified: Verified,
}

/// A ledger file that could not be used: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerError {
    /// The file (or the name given to [`Ledger::from_toml`]).
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// The key at fault, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl core::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if let Some(k) = &self.key {
            write!(f, ": key `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for LedgerError {}

/// 1-based line and column of byte `pos` in `text`.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, col)
}

/// The key a span points at: the text before `=` on its line, or the span's own text.
fn key_at(text: &str, span: &core::ops::Range<usize>) -> Option<String> {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text.get(line_start..line_end)?;
    let col = start - line_start;
    let key = match line.get(..col).and_then(|l| l.rfind('=').map(|_| l)) {
        Some(before) => before.split('=').next().unwrap_or("").split(['{', ',']).next_back().unwrap_or(""),
        None => text.get(start..span.end.min(line_end).max(start))?,
    };
    let key = key.trim().trim_matches('"').trim_matches('[').trim_matches(']').trim();
    (!key.is_empty() && key.len() <= 80).then(|| key.to_string())
}

impl Ledger {
    /// Parses a ledger from TOML text; `file` names it in errors. Unknown keys are refused;
    /// patterns, filters and password hashes are checked.
    pub fn from_toml(text: &str, file: &str) -> Result<Ledger, LedgerError> {
        let ledger: Ledger = toml::from_str(text).map_err(|e| {
            let (line, column, key) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    (l, c, key_at(text, &span))
                }
                None => (0, 0, None),
            };
            LedgerError { file: file.into(), line, column, key, message: e.message().trim().to_string() }
        })?;
        ledger.check().map_err(|(key, message)| {
            // Point at the first occurrence of the offending value (or key) in the text.
            let (line, column) = text.find(&key).map_or((0, 0), |pos| line_col(text, pos));
            LedgerError { file: file.into(), line, column, key: Some(key), message }
        })?;
        Ok(ledger)
    }

    /// Reads and parses a ledger file.
    pub fn from_file(path: &std::path::Path) -> Result<Ledger, LedgerError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| LedgerError { file: file.clone(), line: 0, column: 0, key: None, message: e.to_string() })?;
        Ledger::from_toml(&text, &file)
    }

    /// Checks what serde cannot: filters and password hashes. `Err((value, why))`.
    fn check(&self) -> Result<(), (String, String)> {
        for rule in &self.auth {
            if let Some(p) = rule.password.as_deref().filter(|p| p.starts_with(HASH_PREFIX)) {
                Hash::parse(p).ok_or_else(|| (p.to_string(), format!("password hash is not `{HASH_PREFIX}<iterations>$<salt>$<hash>`")))?;
            }
        }
        for rule in &self.acl {
            for filter in rule.filters.keys() {
                let probe = filter.replace("%c", "c").replace("%u", "u");
                if topics::validate_filter(&probe, usize::MAX, usize::MAX).is_err() {
                    return Err((filter.clone(), "not a valid topic filter".into()));
                }
            }
        }
        Ok(())
    }

    /// The authentication decision for a client: the first rule whose patterns all match
    /// decides; none matching refuses.
    ///
    /// Costs at most one PBKDF2 run per distinct (salt, iterations, length) among the hashes of
    /// the rules whose other patterns match, and none for a password that matched one of these
    /// hashes before (the ledger remembers up to 256 verdicts, see [`Ledger::pbkdf2_runs`]).
    pub fn auth_ok(&mut self, client_id: &str, username: Option<&str>, password: Option<&[u8]>, remote: &str) -> bool {
        let mut check = Check { verified: &mut self.verified, derived: Vec::new(), missed: Vec::new() };
        let mut decision = false;
        for rule in &self.auth {
            if pattern_ok(rule.client.as_deref(), client_id)
                && pattern_ok(rule.username.as_deref(), username.unwrap_or(""))
                && remote_ok(rule.remote.as_deref(), remote)
                && check.password_ok(rule.password.as_deref(), password)
            {
                decision = rule.allow;
                break;
            }
        }
        decision
    }

    /// PBKDF2 derivations this ledger has run (each costs its hash's iterations on the event
    /// loop). A password that matched a hash is remembered, as an HMAC-SHA256 digest under a
    /// random key (never in clear), together with the hashes it failed against before that
    /// match in the same check; up to 256 such verdicts, so a device reconnecting with its
    /// password costs no run. A password that matched nothing is not remembered. A reloaded
    /// (new) ledger, or a clone, remembers nothing.
    pub fn pbkdf2_runs(&self) -> u64 {
        self.verified.runs
    }

    /// The ACL decision: may this client read (subscribe with filter `topic`) or write
    /// (publish to `topic`)?
    pub fn acl_ok(&self, client_id: &str, username: Option<&str>, remote: &str, topic: &str, access: Access) -> bool {
        for rule in &self.acl {
            if !(pattern_ok(rule.client.as_deref(), client_id)
                && pattern_ok(rule.username.as_deref(), username.unwrap_or(""))
                && remote_ok(rule.remote.as_deref(), remote))
            {
                continue;
            }
            if rule.filters.is_empty() {
                return true;
            }
            let (mut matched, mut granted) = (false, false);
            for (filter, perm) in &rule.filters {
                let Some(filter) = substitute(filter, client_id, username) else { continue };
                // Write: the topic name matches. Read: the subscription filter is covered
                // (grants) or merely overlaps (a deny, or a partial grant that refuses).
                let (hit, grants) = match access {
                    Access::Write => (topics::matches(&filter, topic), true),
                    Access::Read => (overlaps(&filter, topic), covers(&filter, topic)),
                };
                if !hit {
                    continue;
                }
                matched = true;
                if *perm == Permission::Deny {
                    return false;
                }
                granted |= grants && perm.grants(access);
            }
            if granted {
                return true;
            }
            if matched {
                return false;
            }
        }
        self.acl_default.grants(access)
    }
}

impl Hook for Ledger {
    fn id(&self) -> &str {
        "ledger"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnConnectAuthenticate, Point::OnAclCheck])
    }
    fn on_connect_authenticate(&mut self, client: &ClientInfo<'_>, password: Option<&[u8]>) -> bool {
        self.auth_ok(client.client_id, client.username, password, client.remote)
    }
    fn on_acl_check(&mut self, client: &ClientInfo<'_>, topic: &str, access: Access) -> bool {
        self.acl_ok(client.client_id, client.username, client.remote, topic, access)
    }
}

// ---- patterns ---------------------------------------------------------------------------

/// `*` matches any run of characters; everything else is literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn pattern_ok(pattern: Option<&str>, text: &str) -> bool {
    pattern.is_none_or(|p| glob(p, text))
}

/// Matches `ip:port`, and the bare ip (`[v6]:port` → `v6`).
fn remote_ok(pattern: Option<&str>, remote: &str) -> bool {
    let Some(p) = pattern else { return true };
    if glob(p, remote) {
        return true;
    }
    match remote.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            glob(p, host.trim_start_matches('[').trim_end_matches(']'))
        }
        _ => false,
    }
}

/// One authentication check: the cache of verified passwords, and what this check learnt.
struct Check<'a, 'r> {
    verified: &'a mut Verified,
    /// (iterations, salt, derived key): one PBKDF2 run per distinct parameters per check.
    derived: Vec<(NonZeroU32, Vec<u8>, Vec<u8>)>,
    /// Hashes the password was derived against and did not match, in this check.
    missed: Vec<&'r str>,
}

impl<'r> Check<'_, 'r> {
    fn password_ok(&mut self, pattern: Option<&'r str>, given: Option<&[u8]>) -> bool {
        let Some(p) = pattern else { return true };
        let given = given.unwrap_or(b"");
        if p.starts_with(HASH_PREFIX) {
            return Hash::parse(p).is_some_and(|h| self.hash_ok(p, &h, given));
        }
        if p.contains('*') {
            return core::str::from_utf8(given).is_ok_and(|g| glob(p, g));
        }
        constant_time_eq(p.as_bytes(), given)
    }

    /// `given` against the hash `h` (written `text`): remembered, or derived once per check.
    /// A match is remembered, and so are the misses before it in this check (so the device
    /// that has this password skips them too next time); a password matching nothing is not.
    fn hash_ok(&mut self, text: &'r str, h: &Hash, given: &[u8]) -> bool {
        if let Some(known) = self.verified.lookup(text, given) {
            if known {
                self.remember_misses(given);
            }
            return known;
        }
        let found = self.derived.iter().position(|(i, s, k)| *i == h.iterations && *s == h.salt && k.len() == h.hash.len());
        let i = match found {
            Some(i) => i,
            None => {
                let mut key = vec![0u8; h.hash.len()];
                pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, h.iterations, &h.salt, given, &mut key);
                self.verified.runs += 1;
                self.derived.push((h.iterations, h.salt.clone(), key));
                self.derived.len() - 1
            }
        };
        let ok = self.derived.get(i).is_some_and(|(_, _, key)| constant_time_eq(&h.hash, key));
        if ok {
            self.verified.insert(text, given, true);
            self.remember_misses(given);
        } else {
            self.missed.push(text);
        }
        ok
    }

    fn remember_misses(&mut self, given: &[u8]) {
        for text in self.missed.drain(..) {
            self.verified.insert(text, given, false);
        }
    }
}

/// Equality whose time does not depend on where the inputs differ (nor on the length of the
/// secret): both sides go through HMAC-SHA256 and ring compares the tags in constant time.
fn constant_time_eq(expected: &[u8], given: &[u8]) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"edgemq ledger comparison");
    let tag = hmac::sign(&key, expected);
    hmac::verify(&key, given, tag.as_ref()).is_ok()
}

/// `%c`/`%u` replaced; `None` when the value is missing or would widen the filter.
fn substitute(filter: &str, client_id: &str, username: Option<&str>) -> Option<String> {
    if !filter.contains('%') {
        return Some(filter.to_string());
    }
    let unsafe_level = |s: &str| s.is_empty() || s.contains(['+', '#', '/']);
    let mut out = filter.to_string();
    if out.contains("%c") {
        if unsafe_level(client_id) {
            return None;
        }
        out = out.replace("%c", client_id);
    }
    if out.contains("%u") {
        let u = username.filter(|u| !unsafe_level(u))?;
        out = out.replace("%u", u);
    }
    Some(out)
}

/// True when every topic that `sub` matches is matched by `rule`.
fn covers(rule: &str, sub: &str) -> bool {
    if sub.starts_with('$') && rule.starts_with(['+', '#']) {
        return false;
    }
    let mut r = rule.split('/');
    let mut s = sub.split('/');
    loop {
        match (r.next(), s.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            (Some(_), None) => return r.next().is_none() && rule.ends_with("/#"),
            (None, Some(_)) => return false,
            (Some(_), Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(_), Some("+")) => return false,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// True when some topic matches both filters.
fn overlaps(a: &str, b: &str) -> bool {
    let dollar = |f: &str| f.starts_with('$');
    let wild = |f: &str| f.starts_with(['+', '#']);
    if (dollar(a) && wild(b)) || (dollar(b) && wild(a)) {
        return false;
    }
    let mut x = a.split('/');
    let mut y = b.split('/');
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

// ---- password hashes ----------------------------------------------------------------------

const HASH_PREFIX: &str = "pbkdf2-sha256$";
const HASH_LEN: usize = 32;
const SALT_LEN: usize = 16;
/// Iterations when `edgemq passwd` is not given `-i`. Each CONNECT checked against a hash
/// costs this many HMAC-SHA256 rounds on the event loop (about 0.1 s on a Pi Zero at 10 000),
/// so it stays modest; raise it on faster machines.
pub const DEFAULT_ITERATIONS: u32 = 10_000;

struct Hash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Hash {
    fn parse(s: &str) -> Option<Hash> {
        let mut parts = s.strip_prefix(HASH_PREFIX)?.split('$');
        let iterations = NonZeroU32::new(parts.next()?.parse().ok()?)?;
        let salt = base64_decode(parts.next()?)?;
        let hash = base64_decode(parts.next()?)?;
        (parts.next().is_none() && !salt.is_empty() && !hash.is_empty()).then_some(Hash { iterations, salt, hash })
    }

    fn verify(&self, password: &[u8]) -> bool {
        pbkdf2::verify(pbkdf2::PBKDF2_HMAC_SHA256, self.iterations, &self.salt, password, &self.hash).is_ok()
    }
}

/// Hashes `password` with PBKDF2-HMAC-SHA256, a random 16-byte salt and `iterations` rounds
/// (at least 1), as `pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>`.
///
/// # Panics
/// When the operating system's random number generator fails.
pub fn hash_password(password: &str, iterations: u32) -> String {
    let mut salt = [0u8; SALT_LEN];
    #[allow(clippy::expect_used)]
    ring::rand::SystemRandom::new().fill(&mut salt).expect("the system random number generator failed");
    hash_password_with_salt(password, iterations, &salt)
}

/// [`hash_password`] with a given salt (for reproducible tests).
pub fn hash_password_with_salt(password: &str, iterations: u32, salt: &[u8]) -> String {
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    let mut out = [0u8; HASH_LEN];
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iterations, salt, password.as_bytes(), &mut out);
    format!("{HASH_PREFIX}{iterations}${}${}", base64_encode(salt), base64_encode(&out))
}

/// True when `password` matches a `pbkdf2-sha256$...` hash (false for anything else).
pub fn verify_password(hash: &str, password: &str) -> bool {
    Hash::parse(hash).is_some_and(|h| h.verify(password.as_bytes()))
}

/// `edgemq passwd [-i ITERATIONS] [PASSWORD]`: prints a hash for the ledger. `args` are the
/// arguments after `passwd`; without PASSWORD, one line is read from standard input. Returns
/// the process exit code.
pub fn passwd_main(args: &[String]) -> i32 {
    let stdin = std::io::stdin();
    passwd_with(args, &mut stdin.lock(), &mut std::io::stdout(), &mut std::io::stderr())
}

/// [`passwd_main`] with its input and outputs given (for tests and embedding).
pub fn passwd_with(args: &[String], input: &mut dyn BufRead, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    const USAGE: &str = "usage: edgemq passwd [-i ITERATIONS] [PASSWORD]   (reads the password from stdin when omitted)";
    let mut iterations = DEFAULT_ITERATIONS;
    let mut password: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                let _ = writeln!(out, "{USAGE}");
                return 0;
            }
            "-i" | "--iterations" => match it.next().and_then(|n| n.parse::<u32>().ok()).filter(|n| *n > 0) {
                Some(n) => iterations = n,
                None => {
                    let _ = writeln!(err, "edgemq passwd: -i needs a positive number of iterations\n{USAGE}");
                    return 2;
                }
            },
            s if s.starts_with('-') && s.len() > 1 => {
                let _ = writeln!(err, "edgemq passwd: unknown option `{s}`\n{USAGE}");
                return 2;
            }
            s if password.is_none() => password = Some(s.to_string()),
            _ => {
                let _ = writeln!(err, "edgemq passwd: one password at a time\n{USAGE}");
                return 2;
            }
        }
    }
    let password = match password {
        Some(p) => p,
        None => {
            let mut line = String::new();
            if input.read_line(&mut line).is_err() {
                let _ = writeln!(err, "edgemq passwd: could not read the password from stdin");
                return 1;
            }
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        let _ = writeln!(err, "edgemq passwd: empty password\n{USAGE}");
        return 2;
    }
    match writeln!(out, "{}", hash_password(&password, iterations)) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

// ---- base64 (standard alphabet, padded; decoding accepts missing padding) ----------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero padding of a valid length.
    (bits < 6 && acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).as_deref(), Some(&data[..]));
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("Zm8"), Some(b"fo".to_vec()));
        assert_eq!(base64_decode("Z!"), None);
    }

    #[test]
    fn glob_handles_stars_anywhere() {
        assert!(glob("*", ""));
        assert!(glob("sensor-*", "sensor-12"));
        assert!(glob("*-12", "sensor-12"));
        assert!(glob("s*r-*2", "sensor-12"));
        assert!(!glob("sensor-*", "actuator-1"));
        assert!(!glob("abc", "abcd"));
        assert!(glob("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn remote_patterns_match_with_or_without_the_port() {
        assert!(remote_ok(Some("127.0.0.1"), "127.0.0.1:5000"));
        assert!(remote_ok(Some("192.168.*"), "192.168.1.7:1883"));
        assert!(remote_ok(Some("*:5000"), "10.0.0.1:5000"));
        assert!(remote_ok(Some("::1"), "[::1]:5000"));
        assert!(!remote_ok(Some("10.*"), "192.168.1.7:1883"));
    }

    #[test]
    fn covers_and_overlaps_follow_mqtt_wildcards() {
        assert!(covers("a/#", "a/+/c"));
        assert!(covers("a/#", "a"));
        assert!(covers("+/b", "x/b"));
        assert!(!covers("a/+", "a/#"));
        assert!(!covers("a/b", "a/+"));
        assert!(!covers("#", "$SYS/x"));
        assert!(overlaps("#", "secret/x"));
        assert!(overlaps("a/+/c", "a/b/#"));
        assert!(!overlaps("a/b", "a/c"));
        assert!(!overlaps("+/x", "$SYS/x"));
    }

    #[test]
    fn hashes_verify_only_their_password_and_parse_strictly() {
        let h = hash_password("s3cret", 100);
        assert!(h.starts_with("pbkdf2-sha256$100$"));
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "s3creT"));
        assert_ne!(hash_password("s3cret", 100), h, "salted");
        assert!(Hash::parse("pbkdf2-sha256$0$AAAA$AAAA").is_none());
        assert!(Hash::parse("pbkdf2-sha256$10$AAAA").is_none());
        assert_eq!(hash_password_with_salt("pw", 1, b"salt"), hash_password_with_salt("pw", 1, b"salt"));
    }

    /// `n` rules for user `u`, each with a hash of its own password made with `salt(i)`.
    fn hashed_rules(n: usize, salt: impl Fn(usize) -> Vec<u8>) -> Ledger {
        let mut text = String::new();
        for i in 0..n {
            let h = hash_password_with_salt(&format!("pw{i}"), 50, &salt(i));
            text.push_str(&format!("[[auth]]\nusername = \"u\"\npassword = \"{h}\"\nallow = true\n"));
        }
        Ledger::from_toml(&text, "t.toml").unwrap()
    }

    #[test]
    fn rules_sharing_salt_and_iterations_cost_one_pbkdf2_run_per_check() {
        let mut l = hashed_rules(5, |_| b"one salt for all".to_vec());
        assert!(!l.auth_ok("c", Some("u"), Some(b"wrong"), "127.0.0.1:1"));
        assert_eq!(l.pbkdf2_runs(), 1, "five candidate rules, one derivation");
        // The last rule's password: still one run, and the first match decides.
        assert!(l.auth_ok("c", Some("u"), Some(b"pw4"), "127.0.0.1:1"));
        assert_eq!(l.pbkdf2_runs(), 2);
        // Rules whose other patterns do not match cost nothing.
        assert!(!l.auth_ok("c", Some("v"), Some(b"pw4"), "127.0.0.1:1"));
        assert_eq!(l.pbkdf2_runs(), 2);
        // Distinct salts: one run per salt, the documented bound.
        let mut l = hashed_rules(3, |i| format!("salt number {i}").into_bytes());
        assert!(!l.auth_ok("c", Some("u"), Some(b"wrong"), "127.0.0.1:1"));
        assert_eq!(l.pbkdf2_runs(), 3);
    }

    #[test]
    fn a_verified_password_is_not_hashed_again_and_a_wrong_one_always_is() {
        let mut l = hashed_rules(2, |i| format!("salt number {i}").into_bytes());
        assert!(l.auth_ok("c", Some("u"), Some(b"pw1"), "127.0.0.1:1"));
        assert_eq!(l.pbkdf2_runs(), 2, "rule 0 fails, rule 1 matches");
        assert_eq!(l.verified.len(), 2, "the match, and the miss before it");
        for _ in 0..3 {
            assert!(l.auth_ok("c2", Some("u"), Some(b"pw1"), "10.0.0.1:2"));
        }
        assert_eq!(l.pbkdf2_runs(), 2, "remembered: no run for the same password");
        assert!(l.auth_ok("c", Some("u"), Some(b"pw0"), "127.0.0.1:1"));
        assert!(l.auth_ok("c", Some("u"), Some(b"pw0"), "127.0.0.1:1"));
        assert_eq!(l.pbkdf2_runs(), 3);
        for _ in 0..2 {
            assert!(!l.auth_ok("c", Some("u"), Some(b"pw9"), "127.0.0.1:1"));
        }
        assert_eq!(l.pbkdf2_runs(), 7, "a password matching nothing is not remembered");
        assert_eq!(l.verified.len(), 3);
        // What is remembered is the pair (hash, password): a changed hash misses.
        let mut changed = hashed_rules(1, |_| b"another salt....".to_vec());
        changed.verified = core::mem::take(&mut l.verified);
        assert!(changed.auth_ok("c", Some("u"), Some(b"pw0"), "127.0.0.1:1"));
        assert_eq!(changed.pbkdf2_runs(), 8);
        // A clone, like a reloaded ledger, remembers nothing.
        let mut copy = changed.clone();
        assert!(copy.auth_ok("c", Some("u"), Some(b"pw0"), "127.0.0.1:1"));
        assert_eq!((copy.pbkdf2_runs(), copy.verified.len()), (1, 1));
        assert_eq!(copy, changed, "the cache is not part of the value");
    }

    #[test]
    fn passwd_hashes_an_argument_or_stdin_and_refuses_bad_flags() {
        let run = |args: &[&str], stdin: &str| {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = passwd_with(&args, &mut stdin.as_bytes(), &mut out, &mut err);
            (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
        };
        let (code, out, _) = run(&["-i", "50", "pw"], "");
        assert_eq!(code, 0);
        assert!(out.starts_with("pbkdf2-sha256$50$") && verify_password(out.trim(), "pw"));
        let (code, out, _) = run(&[], "from stdin\n");
        assert_eq!(code, 0);
        assert!(verify_password(out.trim(), "from stdin"));
        assert_eq!(run(&["-i", "zero", "pw"], "").0, 2);
        assert_eq!(run(&["-x"], "").0, 2);
        assert_eq!(run(&[], "\n").0, 2);
    }

    #[test]
    fn toml_errors_name_the_file_line_column_and_key() {
        let e = Ledger::from_toml("[[auth]]\nusername = \"u\"\npasword = \"x\"\nallow = true\n", "ledger.toml").unwrap_err();
        assert_eq!((e.file.as_str(), e.line, e.column, e.key.as_deref()), ("ledger.toml", 3, 1, Some("pasword")));
        assert!(e.message.contains("unknown field"), "{e}");
        let e = Ledger::from_toml("[[auth]]\nallow = \"yes\"\n", "l.toml").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (2, Some("allow")));
        let e = Ledger::from_toml("[[acl]]\nfilters = { \"a/#/b\" = \"read\" }\n", "l.toml").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (2, Some("a/#/b")));
        let e = Ledger::from_toml("[[acl]]\nfilters = { \"a\" = \"sometimes\" }\n", "l.toml").unwrap_err();
        assert_eq!(e.line, 2);
        let e = Ledger::from_toml("[[auth]]\npassword = \"pbkdf2-sha256$x\"\nallow = true\n", "l.toml").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("l.toml:2:"), "{e}");
    }
}
