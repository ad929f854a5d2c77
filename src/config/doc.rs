//! The config document: every file read (the root and its includes), parsed into one owned tree
//! whose items remember the file and byte span they came from, merged key by key.
//!
//! Nothing here knows what the keys mean; `mod.rs` walks the merged tree.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::ConfigError;

/// Most files in one include chain, the root included.
pub(crate) const MAX_INCLUDE_DEPTH: usize = 4;

/// One file's text, kept so that errors can be located in it.
pub(crate) struct Source {
    pub path: PathBuf,
    text: String,
}

/// All files read for one config, the root first.
#[derive(Default)]
pub(crate) struct Sources {
    files: Vec<Source>,
}

impl Sources {
    fn push(&mut self, path: &Path, text: String) -> usize {
        self.files.push(Source { path: path.to_path_buf(), text });
        self.files.len() - 1
    }

    /// The file with index `src`.
    pub fn file(&self, src: usize) -> &Source {
        &self.files[src]
    }

    /// The 1-based line and column (in characters) of byte `offset` in file `src`.
    pub fn line_col(&self, src: usize, offset: usize) -> (usize, usize) {
        line_col(&self.files[src].text, offset)
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// A value in the merged tree, with where it came from.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    /// Index of the file in [`Sources`].
    pub src: usize,
    /// Span of the key (for array elements: of the element).
    pub key_span: Range<usize>,
    /// Span of the value (for tables: of the `[header]`).
    pub span: Range<usize>,
    /// The value.
    pub value: Value,
}

/// A TOML value, owned.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Str(String),
    /// Integers keep their radix so that a Unix mode written in decimal can be refused.
    Int {
        value: i128,
        radix: u32,
    },
    Float(String),
    Bool(bool),
    Datetime(String),
    Array(Vec<Item>),
    /// Entries in document order.
    Table(Table),
}

/// A table: entries in document order (a table is small; lookups are linear).
pub(crate) type Table = Vec<(String, Item)>;

impl Value {
    /// The value as the "found ..." part of an error message.
    pub fn describe(&self) -> String {
        match self {
            Value::Str(s) => {
                let short: String = s.chars().take(40).collect();
                if short.len() < s.len() {
                    format!("string {short:?}...")
                } else {
                    format!("string {s:?}")
                }
            }
            Value::Int { value, .. } => format!("integer {value}"),
            Value::Float(f) => format!("float {f}"),
            Value::Bool(b) => format!("boolean {b}"),
            Value::Datetime(d) => format!("datetime {d}"),
            Value::Array(_) => "an array".to_string(),
            Value::Table(_) => "a table".to_string(),
        }
    }
}

/// Looks `key` up in `table`.
pub(crate) fn get<'t>(table: &'t Table, key: &str) -> Option<&'t Item> {
    table.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Overlays `over` onto `base` key by key: tables merge recursively, anything else (arrays
/// included) replaces.
fn merge(base: &mut Table, over: Table) {
    for (key, item) in over {
        match base.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => match (&mut old.value, item.value) {
                (Value::Table(old_t), Value::Table(new_t)) => {
                    merge(old_t, new_t);
                    old.src = item.src;
                    old.key_span = item.key_span;
                    old.span = item.span;
                }
                (_, value) => *old = Item { value, ..item },
            },
            None => base.push((key, item)),
        }
    }
}

fn convert_table(src: usize, table: &DeTable<'_>) -> Table {
    let mut entries: Table = table
        .iter()
        .map(|(k, v)| {
            let item =
                Item { src, key_span: k.span(), span: v.span(), value: convert_value(src, v.get_ref()) };
            (k.get_ref().to_string(), item)
        })
        .collect();
    entries.sort_by_key(|(_, item)| item.key_span.start);
    entries
}

fn convert_value(src: usize, value: &DeValue<'_>) -> Value {
    match value {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => Value::Int {
            // Beyond i128 is beyond every range anyway.
            value: i128::from_str_radix(i.as_str(), i.radix()).unwrap_or(i128::MAX),
            radix: i.radix(),
        },
        DeValue::Float(f) => Value::Float(f.as_str().to_string()),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(a) => Value::Array(
            a.iter()
                .map(|v| Item {
                    src,
                    key_span: v.span(),
                    span: v.span(),
                    value: convert_value(src, v.get_ref()),
                })
                .collect(),
        ),
        DeValue::Table(t) => Value::Table(convert_table(src, t)),
    }
}

fn read_error(path: &Path, e: &std::io::Error) -> ConfigError {
    ConfigError::new(path.to_path_buf(), None, None, format!("cannot read config file: {e}"))
}

/// Reads the file at `path` and every file it includes into one merged table.
pub(crate) fn load(sources: &mut Sources, path: &Path) -> Result<Table, ConfigError> {
    let text = fs::read_to_string(path).map_err(|e| read_error(path, &e))?;
    let mut chain = Vec::new();
    parse(sources, path, text, &mut chain)
}

/// Parses `text` (the contents of `path`) and, recursively, the files it includes; `chain` holds
/// the files being read further up, to refuse cycles.
pub(crate) fn parse(
    sources: &mut Sources,
    path: &Path,
    text: String,
    chain: &mut Vec<PathBuf>,
) -> Result<Table, ConfigError> {
    let src = sources.push(path, text);
    let table = {
        let text = &sources.file(src).text;
        let parsed = DeTable::parse(text).map_err(|e| {
            let at = e.span().map(|s| line_col(text, s.start));
            let message = format!("invalid TOML: {}", e.message());
            ConfigError::new(path.to_path_buf(), at, None, message)
        })?;
        convert_table(src, parsed.get_ref())
    };
    chain.push(fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
    let mut table = table;
    let Some(pos) = table.iter().position(|(k, _)| k == "include") else {
        chain.pop();
        return Ok(table);
    };
    let (_, inc) = table.remove(pos);
    let at = Some(sources.line_col(src, inc.span.start));
    let here =
        |message: String| ConfigError::new(path.to_path_buf(), at, Some("include".to_string()), message);
    let Value::Str(rel) = &inc.value else {
        return Err(here(format!("expected the path of a file to include, found {}", inc.value.describe())));
    };
    let target = path.parent().unwrap_or(Path::new("")).join(rel);
    if chain.len() >= MAX_INCLUDE_DEPTH {
        return Err(here(format!(
            "expected at most {MAX_INCLUDE_DEPTH} files in an include chain, found a deeper one at {}",
            target.display()
        )));
    }
    let canonical = fs::canonicalize(&target).unwrap_or_else(|_| target.clone());
    if chain.contains(&canonical) {
        return Err(here(format!("include cycle: {} is already being read", target.display())));
    }
    let text = fs::read_to_string(&target)
        .map_err(|e| here(format!("cannot read included file {}: {e}", target.display())))?;
    let mut base = parse(sources, &target, text, chain)?;
    chain.pop();
    merge(&mut base, table);
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn line_col_counts_lines_and_characters_from_one() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // "bé = " is 6 bytes and 5 characters.
        assert_eq!(line_col(text, 12), (2, 6));
        assert_eq!(line_col(text, 999), (3, 1));
    }
}
