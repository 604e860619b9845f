//! Reading a saved plan without holding its changes: the JSON document is parsed as a stream
//! and each sync's `changes` array goes straight into a change file.

use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::{ChangeSet, ChangeWriter, FORMAT_VERSION, Plan, RowChange, SyncPlan};

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
