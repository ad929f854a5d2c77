//! Topic name and topic filter validation, shared-subscription parsing and single-filter matching
//! (MQTT 5.0 sections 4.7 and 4.8.2).
//!
//! Levels are the substrings between `/` separators; empty levels are real levels, so `a//b` has
//! three levels and `/a` has two. Nothing here normalises a topic [MQTT-4.7.3-4].

use core::fmt;

/// Hard ceiling on the encoded length of a topic name or filter [MQTT-4.7.3-3].
pub const MAX_TOPIC_BYTES: usize = 65_535;

/// Prefix that marks a shared subscription's topic filter [MQTT-4.8.2-1].
pub const SHARE_PREFIX: &str = "$share/";

/// Why a topic name or filter was refused. `Display` names the normative statement, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// The topic is zero-length [MQTT-4.7.3-1].
    Empty,
    /// Longer than the configured bound, or than 65,535 bytes [MQTT-4.7.3-3].
    TooLong,
    /// More levels than the configured bound (a broker limit, not a spec rule).
    TooManyLevels,
    /// A topic name contains `+` or `#` [MQTT-3.3.2-2] [MQTT-4.7.0-1].
    WildcardInName,
    /// `#` is not alone in the last level of a filter [MQTT-4.7.1-1].
    BadMultiLevelWildcard,
    /// `+` does not occupy a whole level of a filter [MQTT-4.7.1-2].
    BadSingleLevelWildcard,
    /// The topic contains U+0000 [MQTT-4.7.3-2].
    NullChar,
    /// A shared subscription's ShareName is empty or contains `+` or `#` [MQTT-4.8.2-1]
    /// [MQTT-4.8.2-2].
    BadSharedGroup,
    /// A ShareName is not followed by `/` and a non-empty topic filter [MQTT-4.8.2-2].
    MissingSharedFilter,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicError::Empty => "[MQTT-4.7.3-1] topic names and filters must be at least one character long",
            TopicError::TooLong => "[MQTT-4.7.3-3] topic is longer than the allowed number of bytes",
            TopicError::TooManyLevels => "topic has more levels than this broker allows",
            TopicError::WildcardInName => "[MQTT-3.3.2-2] a topic name must not contain wildcard characters",
            TopicError::BadMultiLevelWildcard => {
                "[MQTT-4.7.1-1] `#` must be on its own or follow `/`, and be the last character of the filter"
            }
            TopicError::BadSingleLevelWildcard => "[MQTT-4.7.1-2] `+` must occupy an entire level of the filter",
            TopicError::NullChar => "[MQTT-4.7.3-2] topic names and filters must not include U+0000",
            TopicError::BadSharedGroup => {
                "[MQTT-4.8.2-1] [MQTT-4.8.2-2] a ShareName must be at least one character and must not contain `/`, `+` or `#`"
            }
            TopicError::MissingSharedFilter => "[MQTT-4.8.2-2] a ShareName must be followed by `/` and a topic filter",
        })
    }
}

impl std::error::Error for TopicError {}

/// Checks what a name and a filter have in common: non-empty, length, level count, no U+0000.
fn check_common(topic: &str, max_len: usize, max_levels: usize) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty); // [MQTT-4.7.3-1]
    }
    if topic.len() > max_len.min(MAX_TOPIC_BYTES) {
        return Err(TopicError::TooLong); // [MQTT-4.7.3-3]
    }
    if topic.bytes().any(|b| b == 0) {
        return Err(TopicError::NullChar); // [MQTT-4.7.3-2]
    }
    if topic.bytes().filter(|&b| b == b'/').count() >= max_levels {
        return Err(TopicError::TooManyLevels);
    }
    Ok(())
}

/// Validates a topic name as carried by PUBLISH (or a will): non-empty [MQTT-4.7.3-1], at most
/// `max_len` bytes (never more than 65,535 [MQTT-4.7.3-3]), at most `max_levels` levels, no U+0000
/// [MQTT-4.7.3-2] and no wildcard [MQTT-3.3.2-2].
pub fn validate_name(topic: &str, max_len: usize, max_levels: usize) -> Result<(), TopicError> {
    check_common(topic, max_len, max_levels)?;
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Validates a topic filter as carried by SUBSCRIBE or UNSUBSCRIBE: the bounds of
/// [`validate_name`], `#` only as the whole last level [MQTT-4.7.1-1], and `+` only as a whole
/// level [MQTT-4.7.1-2].
///
/// A `$share/…` filter is syntactically a plain filter too; call [`parse_shared`] first to split it.
pub fn validate_filter(filter: &str, max_len: usize, max_levels: usize) -> Result<(), TopicError> {
    check_common(filter, max_len, max_levels)?;
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::BadMultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::BadSingleLevelWildcard);
        }
    }
    Ok(())
}

/// A shared subscription's parts: `$share/{group}/{filter}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    /// The ShareName.
    pub group: &'a str,
    /// The topic filter after the ShareName, already checked by [`validate_filter`] (without
    /// the caller's length and level bounds: apply those to this part).
    pub filter: &'a str,
}

/// Splits a `$share/{group}/{filter}` filter. Returns `Ok(None)` for a filter that does not start
/// with `$share/`. The group must be non-empty [MQTT-4.8.2-1] with no `+` or `#` (and no `/`, which
/// ends it) [MQTT-4.8.2-2]; it must be followed by `/` and a valid, non-empty filter
/// [MQTT-4.8.2-2].
pub fn parse_shared(filter: &str) -> Result<Option<SharedFilter<'_>>, TopicError> {
    let Some(rest) = filter.strip_prefix(SHARE_PREFIX) else {
        return Ok(None);
    };
    let (group, inner) = match rest.split_once('/') {
        Some(parts) => parts,
        None if rest.is_empty() => return Err(TopicError::BadSharedGroup),
        None => return Err(TopicError::MissingSharedFilter),
    };
    if group.is_empty() || group.contains(['+', '#', '\0']) {
        return Err(TopicError::BadSharedGroup);
    }
    if inner.is_empty() {
        return Err(TopicError::MissingSharedFilter);
    }
    validate_filter(inner, MAX_TOPIC_BYTES, usize::MAX)?;
    Ok(Some(SharedFilter { group, filter: inner }))
}

/// Whether a filter contains `+` or `#` (for a valid filter: whether it can match more than one
/// topic name).
pub fn has_wildcards(filter: &str) -> bool {
    filter.bytes().any(|b| b == b'+' || b == b'#')
}

/// Whether the (valid) `filter` matches the topic name `topic`: `+` matches exactly one level,
/// `#` matches its parent level and any number of child levels (`a/#` matches `a`), and a filter
/// starting with a wildcard never matches a name starting with `$` [MQTT-4.7.2-1].
///
/// This is the one-filter reference used for ACL rules and as the oracle for the tries' tests.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false; // [MQTT-4.7.2-1]
    }
    let (mut f, mut t) = (filter.split('/'), topic.split('/'));
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const BIG: usize = usize::MAX;

    #[test]
    fn names_must_be_non_empty_bounded_and_free_of_wildcards_and_nul() {
        assert_eq!(validate_name("", BIG, BIG), Err(TopicError::Empty));
        assert_eq!(validate_name("a/+", BIG, BIG), Err(TopicError::WildcardInName));
        assert_eq!(validate_name("a/#", BIG, BIG), Err(TopicError::WildcardInName));
        assert_eq!(validate_name("a+b", BIG, BIG), Err(TopicError::WildcardInName));
        assert_eq!(validate_name("a\0b", BIG, BIG), Err(TopicError::NullChar));
        assert_eq!(validate_name("abcd", 3, BIG), Err(TopicError::TooLong));
        assert_eq!(validate_name(&"a".repeat(65_536), BIG, BIG), Err(TopicError::TooLong));
        assert_eq!(validate_name("a/b/c", BIG, 2), Err(TopicError::TooManyLevels));
        for ok in ["a/b/c", "/", "/a", "a/", "a//b", " ", "$SYS/x", "sport/tennis/player1"] {
            assert_eq!(validate_name(ok, BIG, BIG), Ok(()), "{ok}");
        }
        assert_eq!(validate_name("a/b/c", 5, 3), Ok(()));
    }

    #[test]
    fn filters_allow_wildcards_only_as_whole_levels_and_hash_only_last() {
        for ok in [
            "#",
            "+",
            "sport/#",
            "sport/tennis/#",
            "+/tennis/#",
            "sport/+/player1",
            "/+",
            "+/+",
            "a//+",
            "$SYS/#",
        ] {
            assert_eq!(validate_filter(ok, BIG, BIG), Ok(()), "{ok}");
        }
        for (bad, err) in [
            ("sport/tennis#", TopicError::BadMultiLevelWildcard),
            ("sport/tennis/#/ranking", TopicError::BadMultiLevelWildcard),
            ("#/", TopicError::BadMultiLevelWildcard),
            ("##", TopicError::BadMultiLevelWildcard),
            ("sport+", TopicError::BadSingleLevelWildcard),
            ("a/+b/c", TopicError::BadSingleLevelWildcard),
            ("++", TopicError::BadSingleLevelWildcard),
            ("", TopicError::Empty),
            ("a/\0", TopicError::NullChar),
        ] {
            assert_eq!(validate_filter(bad, BIG, BIG), Err(err), "{bad}");
        }
        assert_eq!(validate_filter("a/b/#", BIG, 2), Err(TopicError::TooManyLevels));
    }

    #[test]
    fn shared_filters_split_into_group_and_valid_filter() {
        assert_eq!(parse_shared("a/b"), Ok(None));
        assert_eq!(parse_shared("$share"), Ok(None));
        assert_eq!(parse_shared("$SYS/#"), Ok(None));
        assert_eq!(parse_shared("$share/g/a/+/#"), Ok(Some(SharedFilter { group: "g", filter: "a/+/#" })));
        assert_eq!(parse_shared("$share/g//"), Ok(Some(SharedFilter { group: "g", filter: "/" })));
        assert_eq!(parse_shared("$share/"), Err(TopicError::BadSharedGroup));
        assert_eq!(parse_shared("$share//a"), Err(TopicError::BadSharedGroup));
        assert_eq!(parse_shared("$share/g+/a"), Err(TopicError::BadSharedGroup));
        assert_eq!(parse_shared("$share/#/a"), Err(TopicError::BadSharedGroup));
        assert_eq!(parse_shared("$share/g"), Err(TopicError::MissingSharedFilter));
        assert_eq!(parse_shared("$share/g/"), Err(TopicError::MissingSharedFilter));
        assert_eq!(parse_shared("$share/g/a/#/b"), Err(TopicError::BadMultiLevelWildcard));
        assert_eq!(parse_shared("$share/g/a+"), Err(TopicError::BadSingleLevelWildcard));
    }

    #[test]
    fn errors_name_the_normative_statement() {
        assert!(TopicError::BadMultiLevelWildcard.to_string().starts_with("[MQTT-4.7.1-1]"));
        assert!(TopicError::BadSingleLevelWildcard.to_string().starts_with("[MQTT-4.7.1-2]"));
        assert!(TopicError::WildcardInName.to_string().starts_with("[MQTT-3.3.2-2]"));
    }

    #[test]
    fn has_wildcards_sees_plus_and_hash() {
        assert!(has_wildcards("a/+/c") && has_wildcards("#") && !has_wildcards("a/b"));
    }

    #[test]
    fn spec_examples_of_section_4_7_match() {
        let yes = [
            ("sport/tennis/player1/#", "sport/tennis/player1"),
            ("sport/tennis/player1/#", "sport/tennis/player1/ranking"),
            ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"),
            ("sport/#", "sport"),
            ("#", "sport/tennis"),
            ("sport/tennis/+", "sport/tennis/player1"),
            ("sport/tennis/+", "sport/tennis/player2"),
            ("sport/+", "sport/"),
            ("+/+", "/finance"),
            ("/+", "/finance"),
            ("+", "finance"),
            ("$SYS/#", "$SYS/broker/clients"),
            ("$SYS/monitor/+", "$SYS/monitor/Clients"),
            ("$SYS/#", "$SYS"),
            ("a//b", "a//b"),
            ("a/+/b", "a//b"),
        ];
        let no = [
            ("sport/tennis/+", "sport/tennis/player1/ranking"),
            ("sport/+", "sport"),
            ("+", "/finance"),
            ("sport/tennis", "sport/Tennis"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t), "{f} should match {t}");
        }
        for (f, t) in no {
            assert!(!matches(f, t), "{f} should not match {t}");
        }
    }

    #[test]
    fn wildcards_at_the_first_level_never_match_dollar_topics() {
        // [MQTT-4.7.2-1]
        assert!(!matches("#", "$SYS/broker"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(!matches("+", "$x"));
        assert!(matches("a/+", "a/$x"));
        assert!(matches("a/#", "a/$x/y"));
    }

    /// A level-by-level recursive reference, independent of `matches`' iterator loop.
    fn reference(f: &[&str], t: &[&str]) -> bool {
        match (f.first(), t.first()) {
            (Some(&"#"), _) => true,
            (Some(&"+"), Some(_)) => reference(&f[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => reference(&f[1..], &t[1..]),
            (None, None) => true,
            _ => false,
        }
    }

    #[test]
    fn matches_agrees_with_a_recursive_reference_on_a_small_domain() {
        let (filters, topics) = (small_filters(), small_topics());
        for f in filters {
            let fl: Vec<&str> = f.split('/').collect();
            for t in topics {
                let tl: Vec<&str> = t.split('/').collect();
                let dollar = t.starts_with('$') && (fl[0] == "+" || fl[0] == "#");
                assert_eq!(matches(f, t), !dollar && reference(&fl, &tl), "{f} vs {t}");
            }
        }
    }

    /// Every sequence of 1..=`max` levels over `alphabet`, joined by `/`.
    pub(crate) fn join_all(alphabet: &[&str], max: usize, keep: impl Fn(&[&str]) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur: Vec<Vec<&str>> = vec![vec![]];
        for _ in 0..max {
            cur = cur
                .iter()
                .flat_map(|p| alphabet.iter().map(move |l| [p.as_slice(), &[*l]].concat()))
                .collect();
            out.extend(cur.iter().filter(|p| keep(p)).map(|p| p.join("/")));
        }
        out
    }

    /// All 935 valid filters of 1..=4 levels over {a, b, $x, "", +, #} (`#` only last).
    pub(crate) fn small_filters() -> &'static [String] {
        static ALL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        ALL.get_or_init(|| {
            let all = join_all(&["a", "b", "$x", "", "+", "#"], 4, |p| {
                p != [""] && !p[..p.len() - 1].contains(&"#")
            });
            assert!(all.iter().all(|f| validate_filter(f, BIG, BIG).is_ok()));
            assert_eq!(all.len(), 935);
            all
        })
    }

    /// All 339 topic names of 1..=4 levels over {a, b, $x, ""}.
    pub(crate) fn small_topics() -> &'static [String] {
        static ALL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        ALL.get_or_init(|| join_all(&["a", "b", "$x", ""], 4, |p| p != [""]))
    }
}
