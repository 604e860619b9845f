//! Reading a saved plan without holding its changes: each sync's `changes` array goes straight
//! into a change file. A file in the engine's own line layout ([`crate::layout`]) is read a
//! line at a time, each change parsed from its slice ([`read_lines`]); any other JSON
//! document is parsed as a stream ([`PlanSeed`]).

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::changes::ChangeRecord;
use crate::{Action, ChangeSet, ChangeWriter, FORMAT_VERSION, Plan, RowChange, SyncPlan};

/// Marks the error raised when the version does not match, to tell it from a parse error.
pub(crate) const VERSION_MISMATCH: &str = "engine-plan-format-version:";

/// Parses a plan document, writing each sync's changes to `<dir>/changes-<n>.parquet`.
pub(crate) struct PlanSeed<'a> {
    pub(crate) dir: &'a Path,
}

impl<'de> DeserializeSeed<'de> for PlanSeed<'_> {
    type Value = Plan;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Plan, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PlanSeed<'_> {
    type Value = Plan;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a plan document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Plan, A::Error> {
        let mut header = Map::new();
        let mut syncs = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "syncs" => syncs = map.next_value_seed(SyncsSeed { dir: self.dir })?,
                "format_version" => {
                    let version: u32 = map.next_value()?;
                    if version != FORMAT_VERSION {
                        return Err(de::Error::custom(format!("{VERSION_MISMATCH}{version}")));
                    }
                    header.insert(key, Value::from(version));
                }
                _ => {
                    let value: Value = map.next_value()?;
                    header.insert(key, value);
                }
            }
        }
        header.insert("syncs".into(), Value::Array(Vec::new()));
        let mut plan: Plan =
            serde_json::from_value(Value::Object(header)).map_err(de::Error::custom)?;
        plan.syncs = syncs;
        Ok(plan)
    }
}

struct SyncsSeed<'a> {
    dir: &'a Path,
}

impl<'de> DeserializeSeed<'de> for SyncsSeed<'_> {
    type Value = Vec<SyncPlan>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SyncsSeed<'_> {
    type Value = Vec<SyncPlan>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of sync plans")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut syncs = Vec::new();
        loop {
            let seed = SyncSeed {
                path: self.dir.join(format!("changes-{}.parquet", syncs.len())),
            };
            match seq.next_element_seed(seed)? {
                Some(sync) => syncs.push(sync),
                None => return Ok(syncs),
            }
        }
    }
}

struct SyncSeed {
    path: PathBuf,
}

impl<'de> DeserializeSeed<'de> for SyncSeed {
    type Value = SyncPlan;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<SyncPlan, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SyncSeed {
    type Value = SyncPlan;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sync plan")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SyncPlan, A::Error> {
        let mut header = Map::new();
        let mut changes = ChangeSet::default();
        while let Some(key) = map.next_key::<String>()? {
            if key == "changes" {
                changes = map.next_value_seed(ChangesSeed { path: &self.path })?;
            } else {
                let value: Value = map.next_value()?;
                header.insert(key, value);
            }
        }
        header.insert("changes".into(), Value::Array(Vec::new()));
        let mut sync: SyncPlan =
            serde_json::from_value(Value::Object(header)).map_err(de::Error::custom)?;
        sync.changes = changes;
        Ok(sync)
    }
}

struct ChangesSeed<'a> {
    path: &'a Path,
}

impl<'de> DeserializeSeed<'de> for ChangesSeed<'_> {
    type Value = ChangeSet;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<ChangeSet, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChangesSeed<'_> {
    type Value = ChangeSet;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of row changes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ChangeSet, A::Error> {
        let mut writer = ChangeWriter::create(self.path).map_err(de::Error::custom)?;
        while let Some(change) = seq.next_element::<RowChange>()? {
            writer.push(&change).map_err(de::Error::custom)?;
        }
        let rows = writer.finish().map_err(de::Error::custom)?;
        Ok(ChangeSet::from_files(vec![self.path.to_path_buf()], rows))
    }
}

/// The longest first line a plan in the line layout has: the plan's header and the first
/// sync's, up to its `changes` array. A longer one is not that layout (a plan written on one
/// line), and is left to the streaming parser rather than read into memory.
const FIRST_LINE_LIMIT: u64 = 16 << 20;

/// What reading a plan in the line layout does with each sync's changes.
#[derive(Clone, Copy)]
pub(crate) enum Changes<'a> {
    /// Parse them into `<dir>/changes-<n>.parquet` for sync `n`.
    WriteTo(&'a Path),
    /// Only count them, unparsed: their change files are already on this machine (see
    /// [`crate::kept`]). Each sync's [`ChangeSet`] then holds its row count and no file.
    Count,
}

/// Reads a plan in the line layout, copying every byte read into `copy` (the seal), and
/// doing with each sync's changes what `changes` says. None when the file is not in that
/// layout or does not parse: the streaming parser then reads it again, and reports where any
/// error is.
pub(crate) fn read_lines(
    mut reader: impl BufRead,
    changes: Changes<'_>,
    mut copy: impl Write,
) -> std::io::Result<Option<Plan>> {
    // A line ending so opens a sync's changes (the next lines are changes, up to a `]`).
    let opening = format!("\"{}\":[\n", crate::layout::CHANGES_KEY).into_bytes();
    // The document without its changes: every line that is not a change.
    let mut header = Vec::new();
    let mut line = Vec::new();
    (&mut reader)
        .take(FIRST_LINE_LIMIT)
        .read_until(b'\n', &mut line)?;
    copy.write_all(&line)?;
    if !line.ends_with(&opening) {
        return Ok(None);
    }
    header.extend_from_slice(trim_newline(&line));
    let mut parts: Vec<(Option<PathBuf>, u64)> = Vec::new();
    let mut writer = Some(SyncChanges::open(changes, 0)?);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        copy.write_all(&line)?;
        let text = trim_newline(&line);
        if let Some(open) = &mut writer {
            let change = match text {
                [b'{', ..] => Some(text),
                [b',', rest @ ..] if rest.first() == Some(&b'{') => Some(rest),
                [b']', ..] => None,
                _ => return Ok(None),
            };
            if let Some(change) = change {
                if !open.take(change)? {
                    return Ok(None);
                }
                continue;
            }
            // `]`: this sync's changes end; the line goes on with the document.
            if let Some(done) = writer.take() {
                parts.push(done.finish()?);
            }
        }
        header.extend_from_slice(text);
        if line.ends_with(&opening) {
            writer = Some(SyncChanges::open(changes, parts.len())?);
        }
    }
    if writer.is_some() {
        return Ok(None);
    }
    let Ok(document) = serde_json::from_slice::<Value>(&header) else {
        return Ok(None);
    };
    if document.get("format_version").and_then(Value::as_u64) != Some(FORMAT_VERSION.into()) {
        return Ok(None);
    }
    let Ok(mut plan) = serde_json::from_value::<Plan>(document) else {
        return Ok(None);
    };
    if plan.syncs.len() != parts.len() || plan.syncs.iter().any(|s| !s.changes.is_empty()) {
        return Ok(None);
    }
    for (sync, (path, rows)) in plan.syncs.iter_mut().zip(parts) {
        sync.changes = ChangeSet::from_files(path.into_iter().collect(), rows);
    }
    Ok(Some(plan))
}

/// One sync's changes as [`read_lines`] meets them.
enum SyncChanges {
    Write(Box<ChangeWriter>),
    Count(u64),
}

impl SyncChanges {
    fn open(changes: Changes<'_>, sync: usize) -> std::io::Result<SyncChanges> {
        Ok(match changes {
            Changes::WriteTo(dir) => SyncChanges::Write(Box::new(ChangeWriter::create(
                &dir.join(format!("changes-{sync}.parquet")),
            )?)),
            Changes::Count => SyncChanges::Count(0),
        })
    }

    /// Takes one change line; false when it does not parse. A counted line is not parsed: the
    /// seal says whether it is the line the plan was written with.
    fn take(&mut self, change: &[u8]) -> std::io::Result<bool> {
        match self {
            SyncChanges::Write(writer) => {
                let Ok(change) = serde_json::from_slice::<ChangeLine<'_>>(change) else {
                    return Ok(false);
                };
                writer.push_record(&change)?;
            }
            SyncChanges::Count(rows) => *rows += 1,
        }
        Ok(true)
    }

    /// The change file written (if any) and how many changes it holds.
    fn finish(self) -> std::io::Result<(Option<PathBuf>, u64)> {
        match self {
            SyncChanges::Write(writer) => {
                let path = writer.path().to_path_buf();
                Ok((Some(path), writer.finish()?))
            }
            SyncChanges::Count(rows) => Ok((None, rows)),
        }
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// A row change as a saved plan's line holds it (the fields of [`RowChange`]), its strings
/// borrowed from the line where they need no unescaping: the change file takes them from
/// there, with no string of its own per value.
#[derive(serde::Deserialize)]
struct ChangeLine<'a> {
    action: Action,
    #[serde(borrow)]
    key: Text<'a>,
    #[serde(default, borrow)]
    destination_id: Option<Text<'a>>,
    #[serde(borrow)]
    fields: Vec<FieldLine<'a>>,
    #[serde(default, borrow)]
    values: Option<Vec<Option<Text<'a>>>>,
    #[serde(default, borrow)]
    last_error: Option<Text<'a>>,
    #[serde(default, borrow)]
    rekeyed_from: Option<Text<'a>>,
    #[serde(default, borrow)]
    vacated_by: Option<Text<'a>>,
    #[serde(default)]
    wave: u32,
}

/// A field change on a saved plan's line (see [`crate::FieldChange`]).
#[derive(serde::Deserialize)]
struct FieldLine<'a> {
    #[serde(borrow)]
    property: Text<'a>,
    #[serde(borrow)]
    before: Option<Text<'a>>,
    #[serde(borrow)]
    after: Option<Text<'a>>,
}

/// A JSON string, borrowed from the input when it has no escape, owned otherwise.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

fn text<'s>(value: &'s Option<Text<'_>>) -> Option<&'s str> {
    value.as_ref().map(|t| t.0.as_ref())
}

impl ChangeRecord for ChangeLine<'_> {
    fn action(&self) -> Action {
        self.action
    }
    fn key(&self) -> &str {
        &self.key.0
    }
    fn destination_id(&self) -> Option<&str> {
        text(&self.destination_id)
    }
    fn fields(&self) -> impl Iterator<Item = (&str, Option<&str>, Option<&str>)> {
        self.fields
            .iter()
            .map(|f| (f.property.0.as_ref(), text(&f.before), text(&f.after)))
    }
    fn values(&self) -> Option<impl Iterator<Item = Option<&str>>> {
        self.values.as_ref().map(|values| values.iter().map(text))
    }
    fn last_error(&self) -> Option<&str> {
        text(&self.last_error)
    }
    fn rekeyed_from(&self) -> Option<&str> {
        text(&self.rekeyed_from)
    }
    fn vacated_by(&self) -> Option<&str> {
        text(&self.vacated_by)
    }
    fn wave(&self) -> u32 {
        self.wave
    }
}
