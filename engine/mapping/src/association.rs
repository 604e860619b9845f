//! An association's value from its model column: the records to link, as the canonical set
//! `connector_core::association` defines (sorted, each once, JSON; null when there is none).
//!
//! A cell may hold one target or several, each a record id or a value of the property the
//! association finds records by, with or without a label:
//!
//! | cell | targets |
//! | --- | --- |
//! | `901`, `"901"` | 901 |
//! | `"901, 902"` | 901 and 902 (a comma-separated string) |
//! | a list `[901, 902]` | 901 and 902 |
//! | `{"value": 901, "label": "Primary"}` (JSON text or a struct) | 901, labelled Primary |
//! | `[{"value": 901, "label": "Primary"}, {"value": 902}]` | both, the second with the sync's `label` |
//! | null, `""`, `[]` | none |
//!
//! A target without a label of its own takes the association's static `label:`.

use arrow::array::{Array, ArrayRef, StringBuilder};
use connector_core::association::{AssociationTarget, encode_targets};
use serde_json::Value as Json;

use crate::format::cell_value;

/// Reads one association column into its canonical values; a cell of the wrong shape is an
/// error naming why, for the row `row` of the batch.
pub(crate) fn targets_column(
    column: &dyn Array,
    label: Option<&str>,
) -> Result<ArrayRef, (usize, String)> {
    let mut out = StringBuilder::with_capacity(column.len(), column.len() * 16);
    for row in 0..column.len() {
        let json = to_json(&cell_value(column, row));
        let mut targets = Vec::new();
        read(&json, label, true, &mut targets).map_err(|message| (row, message))?;
        out.append_option(encode_targets(targets));
    }
    Ok(std::sync::Arc::new(out.finish()) as ArrayRef)
}

/// A cell's value as JSON: structs as objects, lists as arrays.
fn to_json(value: &minijinja::Value) -> Json {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Json::Null,
        ValueKind::Bool => Json::Bool(value.is_true()),
        ValueKind::Number => value
            .as_i64()
            .map(Json::from)
            .or_else(|| f64::try_from(value.clone()).ok().map(Json::from))
            .unwrap_or(Json::Null),
        ValueKind::Seq | ValueKind::Iterable => Json::Array(
            value
                .try_iter()
                .map(|items| items.map(|item| to_json(&item)).collect())
                .unwrap_or_default(),
        ),
        ValueKind::Map => {
            let mut object = serde_json::Map::new();
            if let Ok(keys) = value.try_iter() {
                for key in keys {
                    if let Ok(item) = value.get_item(&key) {
                        object.insert(key.to_string(), to_json(&item));
                    }
                }
            }
            Json::Object(object)
        }
        _ => value.as_str().map_or_else(
            || Json::String(value.to_string()),
            |s| Json::String(s.to_string()),
        ),
    }
}

/// Adds the targets `value` holds to `out`. `top` allows the forms only a whole cell may
/// take (a list, a comma-separated string, JSON text).
fn read(
    value: &Json,
    label: Option<&str>,
    top: bool,
    out: &mut Vec<AssociationTarget>,
) -> Result<(), String> {
    match value {
        Json::Null => Ok(()),
        Json::Number(n) => {
            out.push(target(n.to_string(), label));
            Ok(())
        }
        Json::String(text) => {
            let text = text.trim();
            if top && (text.starts_with('[') || text.starts_with('{')) {
                let parsed: Json = serde_json::from_str(text)
                    .map_err(|e| format!("`{text}` is not valid JSON: {e}"))?;
                return read(&parsed, label, false, out);
            }
            if top {
                for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    out.push(target(part.to_string(), label));
                }
            } else if !text.is_empty() {
                out.push(target(text.to_string(), label));
            }
            Ok(())
        }
        Json::Array(items) => {
            for item in items {
                if item.is_array() {
                    return Err(format!(
                        "a list inside a list (`{item}`) names no record: give values or \
                         `{{\"value\": …, \"label\": …}}` objects"
                    ));
                }
                read(item, label, false, out)?;
            }
            Ok(())
        }
        Json::Object(fields) => {
            let value = fields.get("value").ok_or_else(|| {
                format!("`{value}` has no `value`: write `{{\"value\": …, \"label\": …}}`")
            })?;
            let to = match value {
                Json::String(s) if !s.trim().is_empty() => s.trim().to_string(),
                Json::Number(n) => n.to_string(),
                Json::Null => return Ok(()),
                other => {
                    return Err(format!(
                        "the `value` `{other}` is not a record id or property value"
                    ));
                }
            };
            let own = match fields.get("label") {
                None | Some(Json::Null) => label.map(str::to_string),
                Some(Json::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Some(Json::Number(n)) => Some(n.to_string()),
                Some(other) => {
                    return Err(format!(
                        "the `label` `{other}` is not a label's name or type id"
                    ));
                }
            };
            out.push(AssociationTarget { to, label: own });
            Ok(())
        }
        Json::Bool(b) => Err(format!("`{b}` is not a record id or property value")),
    }
}

fn target(to: String, label: Option<&str>) -> AssociationTarget {
    AssociationTarget {
        to,
        label: label.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, ListArray, StringArray};
    use arrow::datatypes::Int64Type;

    use super::*;

    /// The canonical values of a column.
    fn values(column: &dyn Array, label: Option<&str>) -> Vec<Option<String>> {
        let out = targets_column(column, label).expect("a good column");
        let out = out.as_any().downcast_ref::<StringArray>().expect("text");
        (0..out.len())
            .map(|i| out.is_valid(i).then(|| out.value(i).to_string()))
            .collect()
    }

    #[test]
    fn every_cell_shape_becomes_a_canonical_set() {
        let text = StringArray::from(vec![
            Some("902, 901,901"),
            Some(r#"{"value": 901, "label": "Primary"}"#),
            Some(r#"[{"value": "901", "label": "Primary"}, {"value": 902}]"#),
            Some(""),
            None,
            Some("[]"),
        ]);
        assert_eq!(
            values(&text, None),
            [
                Some(r#"[{"to":"901"},{"to":"902"}]"#.to_string()),
                Some(r#"[{"to":"901","label":"Primary"}]"#.to_string()),
                Some(r#"[{"to":"901","label":"Primary"},{"to":"902"}]"#.to_string()),
                None,
                None,
                None,
            ]
        );
        let ids = Int64Array::from(vec![Some(7), None]);
        assert_eq!(
            values(&ids, Some("Billing")),
            [Some(r#"[{"to":"7","label":"Billing"}]"#.to_string()), None]
        );
        let lists = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(3), Some(1)]),
            Some(vec![]),
        ]);
        assert_eq!(
            values(&lists, None),
            [Some(r#"[{"to":"1"},{"to":"3"}]"#.to_string()), None]
        );
        let _ = Arc::new(lists);
    }

    #[test]
    fn a_cell_of_the_wrong_shape_names_why() {
        for (cell, wanted) in [
            (r#"{"label": "Primary"}"#, "has no `value`"),
            (r#"{"value": true}"#, "is not a record id"),
            ("[[1, 2]]", "a list inside a list"),
            ("{oops", "is not valid JSON"),
        ] {
            let column = StringArray::from(vec![Some("1"), Some(cell)]);
            let (row, message) = targets_column(&column, None).expect_err(cell);
            assert_eq!(row, 1);
            assert!(message.contains(wanted), "{cell}: {message}");
        }
    }
}
