//! Associations in a row's values: how a link from the written record to other records travels
//! through the plan, the state and an [`Operation`](crate::Operation).
//!
//! An association is a value like any property's, under a name no destination property can
//! have (`@` and the association's name, e.g. `@companies`), so the diff, the fingerprint and
//! the state treat it as they treat a property: a changed link is a changed value.
//!
//! - In the plan and the state the value is the set of targets, canonical (sorted, each once)
//!   as JSON: `[{"to":"901","label":"Primary"},{"to":"902"}]`. No target is a null value.
//! - In an operation it is the change to send, [`AssociationChange`]:
//!   `{"add":[…],"remove":[…],"unlink":[…]}`; a create adds every target, an update the
//!   difference.

use serde::{Deserialize, Serialize};

/// What starts the name of an association among a row's property names.
pub const ASSOCIATION_PREFIX: char = '@';

/// True when a property name names an association (`@companies`).
pub fn is_association(property: &str) -> bool {
    property.starts_with(ASSOCIATION_PREFIX)
}

/// The property name an association travels under (`companies` → `@companies`).
pub fn association_property(name: &str) -> String {
    format!("{ASSOCIATION_PREFIX}{name}")
}

/// One record an association links to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AssociationTarget {
    /// The target: a record id, or a value of the property the association finds records by.
    pub to: String,
    /// The association label (a label's name or a type id); `None` is the unlabelled default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl AssociationTarget {
    /// `901 (label: Primary)`, for plans and messages.
    pub fn describe(&self) -> String {
        match &self.label {
            Some(label) => format!("{} (label: {label})", self.to),
            None => self.to.clone(),
        }
    }
}

/// The canonical value of a set of targets: sorted, each once, as JSON; `None` when empty.
pub fn encode_targets(mut targets: Vec<AssociationTarget>) -> Option<String> {
    targets.sort();
    targets.dedup();
    if targets.is_empty() {
        return None;
    }
    // Strings only: serializing cannot fail.
    serde_json::to_string(&targets).ok()
}

/// The targets of a canonical value (a value that is not one, such as a state written before
/// associations existed, holds none).
pub fn decode_targets(value: Option<&str>) -> Vec<AssociationTarget> {
    value
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// The state value of a `when: created` association whose links are owed: the sync created
/// the record, but the apply stopped before the links were made (crash recovery records it).
/// It is no canonical value (those are JSON arrays), so the next plan sees a change and sends
/// the links as for a record just created.
pub const LINKS_OWED: &str = "owed";

/// What an operation asks of one association: links to add, links to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociationChange {
    /// Links to make (making one that exists is harmless).
    #[serde(default)]
    pub add: Vec<AssociationTarget>,
    /// Labels to remove from links that stay (only for associations with `remove_stale`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<AssociationTarget>,
    /// Targets to unlink altogether, every label (only with `remove_stale`): no target of the
    /// new set names them any more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlink: Vec<String>,
    /// The links are owed to a record the sync created ([`LINKS_OWED`]): they are made even
    /// for an association linked only for created records.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub owed: bool,
}

impl AssociationChange {
    /// The change from the targets `before` to those `after` (canonical values); removals only
    /// when `remove_stale`.
    pub fn between(before: Option<&str>, after: Option<&str>, remove_stale: bool) -> Self {
        let owed = before == Some(LINKS_OWED);
        let before = decode_targets(before);
        let after = decode_targets(after);
        let add = after
            .iter()
            .filter(|t| !before.contains(t))
            .cloned()
            .collect();
        let mut remove = Vec::new();
        let mut unlink: Vec<String> = Vec::new();
        if remove_stale {
            for target in before.into_iter().filter(|t| !after.contains(t)) {
                if after.iter().any(|t| t.to == target.to) {
                    remove.push(target);
                } else if !unlink.contains(&target.to) {
                    unlink.push(target.to);
                }
            }
        }
        Self {
            add,
            remove,
            unlink,
            owed,
        }
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.unlink.is_empty()
    }

    /// The change as an operation's property value.
    pub fn encode(&self) -> String {
        // Strings only: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The change an operation's property value holds; `None` when it is not one.
    pub fn decode(value: &str) -> Option<Self> {
        serde_json::from_str(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(to: &str, label: Option<&str>) -> AssociationTarget {
        AssociationTarget {
            to: to.into(),
            label: label.map(str::to_string),
        }
    }

    #[test]
    fn targets_are_canonical() {
        let value = encode_targets(vec![
            target("902", None),
            target("901", Some("Primary")),
            target("902", None),
        ]);
        assert_eq!(
            value.as_deref(),
            Some(r#"[{"to":"901","label":"Primary"},{"to":"902"}]"#)
        );
        assert_eq!(encode_targets(Vec::new()), None);
        assert_eq!(decode_targets(value.as_deref()).len(), 2);
        assert!(decode_targets(Some("not json")).is_empty());
    }

    #[test]
    fn a_change_adds_the_new_targets_and_removes_the_old_only_when_asked() {
        let before = encode_targets(vec![target("1", None), target("2", None)]);
        let after = encode_targets(vec![target("2", None), target("3", Some("Primary"))]);
        let change = AssociationChange::between(before.as_deref(), after.as_deref(), true);
        assert_eq!(change.add, [target("3", Some("Primary"))]);
        assert_eq!(change.unlink, ["1"]);
        assert!(change.remove.is_empty());
        // A label dropped from a target that stays removes that label only.
        let relabelled = encode_targets(vec![target("2", Some("Primary"))]);
        let change = AssociationChange::between(before.as_deref(), relabelled.as_deref(), true);
        assert_eq!(change.remove, [target("2", None)]);
        assert_eq!(change.unlink, ["1"]);
        let kept = AssociationChange::between(before.as_deref(), after.as_deref(), false);
        assert!(kept.remove.is_empty() && kept.unlink.is_empty());
        assert_eq!(AssociationChange::decode(&change.encode()), Some(change));
        assert!(AssociationChange::between(None, None, true).is_empty());
        assert_eq!(
            target("9", Some("Primary")).describe(),
            "9 (label: Primary)"
        );
    }

    #[test]
    fn owed_links_are_added_whole_and_say_so() {
        let after = encode_targets(vec![target("1", None), target("2", None)]);
        let change = AssociationChange::between(Some(LINKS_OWED), after.as_deref(), true);
        assert!(change.owed);
        assert_eq!(change.add, [target("1", None), target("2", None)]);
        assert!(
            change.unlink.is_empty(),
            "nothing was linked, nothing to unlink"
        );
        assert_eq!(AssociationChange::decode(&change.encode()), Some(change));
        let normal = AssociationChange::between(None, after.as_deref(), true);
        assert!(!normal.owed);
        assert!(!normal.encode().contains("owed"), "{}", normal.encode());
    }
}
