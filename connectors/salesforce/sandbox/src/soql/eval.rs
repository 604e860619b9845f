//! Running a parsed query against the store.
//!
//! Fields and the object are resolved first (unknown ones are Salesforce's `INVALID_FIELD` /
//! `INVALID_TYPE` with its row/column message, FACTS Q1, E4), literals are typed by their
//! field (`invalid ID field` for an id that is not one, "must be of type …" for a quoted
//! number or date). Text compares ignoring case, as Salesforce compares text and email
//! values; ids compare in their 18-character form, so both forms match. A filter whose
//! top-level conjunct is `Id = …`, `Id IN (…)` or the same on an indexed field (external ids,
//! unique fields, `Email`) reads only the matching records through the store's indexes;
//! other filters scan the object's records. Without ORDER BY, records come in creation
//! order.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::lexer::Pos;
use super::parse::{Cond, Lit, Op, Order, Query, Select};
use crate::errors::{ApiError, code};
use crate::ids;
use crate::schema::{FieldDef, FieldType};
use crate::store::{ObjectKey, Record, Store};
use crate::write::parse_datetime;

/// A query's answer: the total and the rendered records (none for `COUNT()`).
pub(crate) struct Answer {
    pub(crate) total: usize,
    pub(crate) records: Vec<Value>,
}

/// Salesforce's located query error: the row of the query, a caret, `ERROR at
/// Row:r:Column:c` and the detail.
pub(crate) fn located(query: &str, pos: Pos, code: &'static str, detail: &str) -> ApiError {
    let line = query
        .lines()
        .nth(pos.row.saturating_sub(1))
        .unwrap_or(query);
    let caret = format!("{}^", " ".repeat(pos.col.saturating_sub(1)));
    ApiError::bad_request(
        code,
        format!(
            "\n{line}\n{caret}\nERROR at Row:{}:Column:{}\n{detail}",
            pos.row, pos.col
        ),
    )
}

/// A selected or filtered column: a field of the object, or of a parent through a lookup.
#[derive(Clone, Debug)]
enum Column {
    Own(FieldDef),
    Parent {
        reference: String,
        relationship: String,
        target: ObjectKey,
        field: FieldDef,
    },
}

impl Column {
    fn field(&self) -> &FieldDef {
        match self {
            Column::Own(f) | Column::Parent { field: f, .. } => f,
        }
    }

    fn value(&self, store: &Store, key: ObjectKey, record: &Record) -> Value {
        match self {
            Column::Own(field) => store.value(key, record, field),
            Column::Parent {
                reference,
                target,
                field,
                ..
            } => record
                .values
                .get(reference)
                .and_then(Value::as_str)
                .and_then(|id| store.table(*target).get(id))
                .map_or(Value::Null, |parent| store.value(*target, parent, field)),
        }
    }
}

/// A condition with its columns and literals resolved.
enum Test {
    And(Vec<Test>),
    Or(Vec<Test>),
    Not(Box<Test>),
    Cmp(Column, Op, Value),
    In(Column, bool, Vec<Value>),
    Like(Column, Vec<(char, bool)>),
}

struct Resolver<'a> {
    store: &'a Store,
    key: ObjectKey,
    query: &'a str,
}

impl Resolver<'_> {
    fn column(&self, name: &str, pos: Pos) -> Result<Column, ApiError> {
        let def = self.store.def(self.key);
        let missing = |entity: &str, field: &str| {
            located(
                self.query,
                pos,
                code::INVALID_FIELD,
                &format!(
                    "No such column '{field}' on entity '{entity}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
                ),
            )
        };
        if let Some((relationship, field)) = name.split_once('.') {
            let reference = def
                .relationship(relationship)
                .ok_or_else(|| missing(&def.name, name))?;
            let target = reference
                .reference_to
                .first()
                .and_then(|t| self.store.object(t))
                .ok_or_else(|| missing(&def.name, name))?;
            let target_def = self.store.def(target);
            let parent_field = target_def
                .field(field)
                .ok_or_else(|| missing(&target_def.name, field))?;
            return Ok(Column::Parent {
                reference: reference.name.clone(),
                relationship: reference.relationship_name.clone().unwrap_or_default(),
                target,
                field: parent_field.clone(),
            });
        }
        def.field(name)
            .map(|f| Column::Own(f.clone()))
            .ok_or_else(|| missing(&def.name, name))
    }

    fn literal(&self, field: &FieldDef, lit: &Lit, pos: Pos) -> Result<Value, ApiError> {
        let wrong = |kind: &str, quoted: bool| {
            located(
                self.query,
                pos,
                code::MALFORMED_QUERY,
                &format!(
                    "value of filter criterion for field '{}' must be of type {kind} and should {}be enclosed in quotes",
                    field.name,
                    if quoted { "" } else { "not " }
                ),
            )
        };
        if *lit == Lit::Null {
            return Ok(Value::Null);
        }
        match field.kind {
            FieldType::Id | FieldType::Reference => match lit {
                Lit::Str(text) => ids::normalize(text).map(Value::String).ok_or_else(|| {
                    located(
                        self.query,
                        pos,
                        code::INVALID_QUERY_FILTER_OPERATOR,
                        &format!("invalid ID field: {text}"),
                    )
                }),
                _ => Err(wrong("id", true)),
            },
            FieldType::Boolean => match lit {
                Lit::Bool(b) => Ok(json!(b)),
                _ => Err(wrong("boolean", false)),
            },
            FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent => {
                match lit {
                    Lit::Num(n) => n
                        .parse::<f64>()
                        .map(|f| json!(f))
                        .map_err(|_| wrong("double", false)),
                    _ => Err(wrong("double", false)),
                }
            }
            FieldType::Date => match lit {
                Lit::Date(d) if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok() => {
                    Ok(json!(d))
                }
                _ => Err(wrong("date", false)),
            },
            FieldType::DateTime => match lit {
                Lit::Date(d) => parse_datetime(d)
                    .map(Value::String)
                    .ok_or_else(|| wrong("dateTime", false)),
                _ => Err(wrong("dateTime", false)),
            },
            _ => match lit {
                Lit::Str(text) => Ok(json!(text)),
                _ => Err(wrong("string", true)),
            },
        }
    }

    fn test(&self, cond: &Cond) -> Result<Test, ApiError> {
        Ok(match cond {
            Cond::And(items) => Test::And(
                items
                    .iter()
                    .map(|c| self.test(c))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::Or(items) => Test::Or(
                items
                    .iter()
                    .map(|c| self.test(c))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::Not(inner) => Test::Not(Box::new(self.test(inner)?)),
            Cond::Cmp { field, op, value } => {
                let column = self.column(&field.0, field.1)?;
                let typed = self.literal(column.field(), &value.0, value.1)?;
                Test::Cmp(column, *op, typed)
            }
            Cond::In {
                field,
                negated,
                values,
            } => {
                let column = self.column(&field.0, field.1)?;
                let typed = values
                    .iter()
                    .map(|(lit, pos)| self.literal(column.field(), lit, *pos))
                    .collect::<Result<_, _>>()?;
                Test::In(column, *negated, typed)
            }
            Cond::Like {
                field,
                pattern,
                wild,
            } => {
                let column = self.column(&field.0, field.1)?;
                let chars = pattern
                    .chars()
                    .enumerate()
                    .map(|(i, c)| (c, wild.contains(&i)))
                    .collect();
                Test::Like(column, chars)
            }
        })
    }
}

/// Compares a record's value with a literal; `None` when they do not compare (null).
fn compare(field: &FieldDef, a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) if field.kind.is_text() => {
            Some(x.to_lowercase().cmp(&y.to_lowercase()))
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// LIKE: `%` any run, `_` one character, escaped ones literal; case-insensitive.
fn like(text: &str, pattern: &[(char, bool)]) -> bool {
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let pattern: Vec<(char, bool)> = pattern
        .iter()
        .flat_map(|(c, lit)| c.to_lowercase().map(move |l| (l, *lit)))
        .collect();
    let (mut t, mut p) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        match pattern.get(p) {
            Some(('%', false)) => {
                star = Some(p);
                mark = t;
                p += 1;
            }
            Some((c, literal)) if (*c == '_' && !literal) || *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some(s) => {
                    p = s + 1;
                    mark += 1;
                    t = mark;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|(c, lit)| *c == '%' && !lit)
}

fn matches(test: &Test, store: &Store, key: ObjectKey, record: &Record) -> bool {
    match test {
        Test::And(items) => items.iter().all(|t| matches(t, store, key, record)),
        Test::Or(items) => items.iter().any(|t| matches(t, store, key, record)),
        Test::Not(inner) => !matches(inner, store, key, record),
        Test::Cmp(column, op, literal) => {
            let value = column.value(store, key, record);
            match (op, literal.is_null()) {
                (Op::Eq, true) => value.is_null(),
                (Op::Ne, true) => !value.is_null(),
                (_, true) => false,
                _ => {
                    compare(column.field(), &value, literal).is_some_and(|ord| match op {
                        Op::Eq => ord == Ordering::Equal,
                        Op::Ne => ord != Ordering::Equal,
                        Op::Lt => ord == Ordering::Less,
                        Op::Le => ord != Ordering::Greater,
                        Op::Gt => ord == Ordering::Greater,
                        Op::Ge => ord != Ordering::Less,
                    }) || (*op == Op::Ne && value.is_null())
                }
            }
        }
        Test::In(column, negated, values) => {
            let value = column.value(store, key, record);
            let hit = values.iter().any(|v| {
                if v.is_null() {
                    value.is_null()
                } else {
                    compare(column.field(), &value, v) == Some(Ordering::Equal)
                }
            });
            hit != *negated
        }
        Test::Like(column, pattern) => column
            .value(store, key, record)
            .as_str()
            .is_some_and(|text| like(text, pattern)),
    }
}

/// The records an indexed top-level conjunct narrows the search to, if there is one.
fn candidates<'s>(test: &Test, store: &'s Store, key: ObjectKey) -> Option<Vec<&'s Record>> {
    let conjuncts: Vec<&Test> = match test {
        Test::And(items) => items.iter().collect(),
        other => vec![other],
    };
    let table = store.table(key);
    for conjunct in conjuncts {
        let (field, values) = match conjunct {
            Test::Cmp(Column::Own(field), Op::Eq, value) => (field, std::slice::from_ref(value)),
            Test::In(Column::Own(field), false, values) => (field, values.as_slice()),
            _ => continue,
        };
        if field.kind == FieldType::Id {
            let mut found: Vec<&Record> = values
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|id| table.get(id))
                .collect();
            found.sort_by(|a, b| a.id.cmp(&b.id));
            found.dedup_by(|a, b| a.id == b.id);
            return Some(found);
        }
        if table.is_indexed(&field.name) {
            let mut found: Vec<&Record> = values
                .iter()
                .flat_map(|v| table.lookup(&field.name, v))
                .collect();
            // Ids of one object sort in creation order (base 62 in ASCII order, fixed width).
            found.sort_by(|a, b| a.id.cmp(&b.id));
            found.dedup_by(|a, b| a.id == b.id);
            return Some(found);
        }
    }
    None
}

/// Renders one record with the selected columns (parents nested under their relationship
/// name, as Salesforce nests them).
fn render(
    store: &Store,
    key: ObjectKey,
    record: &Record,
    columns: &[(String, Column)],
    version: &str,
) -> Value {
    let def = store.def(key);
    let mut body = Map::new();
    body.insert(
        "attributes".into(),
        json!({"type": def.name, "url": format!("/services/data/v{version}/sobjects/{}/{}", def.name, record.id)}),
    );
    let mut parents: BTreeMap<String, Value> = BTreeMap::new();
    for (_, column) in columns {
        match column {
            Column::Own(field) => {
                body.insert(field.name.clone(), store.value(key, record, field));
            }
            Column::Parent {
                reference,
                relationship,
                target,
                field,
            } => {
                let parent = record
                    .values
                    .get(reference)
                    .and_then(Value::as_str)
                    .and_then(|id| store.table(*target).get(id));
                let slot = parents.entry(relationship.clone()).or_insert_with(|| match parent {
                    Some(p) => {
                        let target_def = store.def(*target);
                        json!({"attributes": {"type": target_def.name, "url": format!("/services/data/v{version}/sobjects/{}/{}", target_def.name, p.id)}})
                    }
                    None => Value::Null,
                });
                if let (Some(p), Value::Object(map)) = (parent, slot) {
                    map.insert(field.name.clone(), store.value(*target, p, field));
                }
            }
        }
    }
    for (relationship, value) in parents {
        body.insert(relationship, value);
    }
    Value::Object(body)
}

/// Runs `query` (its text kept for error messages); `hidden` says whether the user cannot
/// see an object.
pub(crate) fn run(
    store: &Store,
    text: &str,
    query: &Query,
    hidden: impl Fn(&str) -> bool,
    version: &str,
) -> Result<Answer, ApiError> {
    let key = store
        .object(&query.object.0)
        .filter(|k| !hidden(&store.def(*k).name))
        .ok_or_else(|| {
            located(
                text,
                query.object.1,
                code::INVALID_TYPE,
                &format!(
                    "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                    query.object.0
                ),
            )
        })?;
    let resolver = Resolver {
        store,
        key,
        query: text,
    };
    let mut columns: Vec<(String, Column)> = Vec::new();
    if let Select::Fields(names) = &query.select {
        for (name, pos) in names {
            let column = resolver.column(name, *pos)?;
            if columns.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(located(
                    text,
                    *pos,
                    code::MALFORMED_QUERY,
                    &format!("duplicate field selected: {name}"),
                ));
            }
            columns.push((name.clone(), column));
        }
    }
    let test = query
        .filter
        .as_ref()
        .map(|c| resolver.test(c))
        .transpose()?;
    let order: Vec<(Column, &Order)> = query
        .order
        .iter()
        .map(|o| resolver.column(&o.field.0, o.field.1).map(|c| (c, o)))
        .collect::<Result<_, _>>()?;
    let table = store.table(key);
    let pool: Vec<&Record> = match test.as_ref().and_then(|t| candidates(t, store, key)) {
        Some(found) => found,
        None => table.iter().collect(),
    };
    let mut hits: Vec<&Record> = pool
        .into_iter()
        .filter(|r| test.as_ref().is_none_or(|t| matches(t, store, key, r)))
        .collect();
    if !order.is_empty() {
        hits.sort_by(|a, b| {
            for (column, item) in &order {
                let (x, y) = (column.value(store, key, a), column.value(store, key, b));
                let ord = match (x.is_null(), y.is_null()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => {
                        if item.nulls_last {
                            Ordering::Greater
                        } else {
                            Ordering::Less
                        }
                    }
                    (false, true) => {
                        if item.nulls_last {
                            Ordering::Less
                        } else {
                            Ordering::Greater
                        }
                    }
                    _ => {
                        let ord = compare(column.field(), &x, &y).unwrap_or(Ordering::Equal);
                        if item.descending { ord.reverse() } else { ord }
                    }
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        });
    }
    let hits: Vec<&Record> = hits
        .into_iter()
        .skip(query.offset.unwrap_or(0))
        .take(query.limit.unwrap_or(usize::MAX))
        .collect();
    Ok(match query.select {
        Select::Count => Answer {
            total: hits.len(),
            records: Vec::new(),
        },
        Select::Fields(_) => Answer {
            total: hits.len(),
            records: hits
                .iter()
                .map(|r| render(store, key, r, &columns, version))
                .collect(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Vec<(char, bool)> {
        text.chars().map(|c| (c, false)).collect()
    }

    #[test]
    fn like_matches_wildcards_ignoring_case() {
        assert!(like("Acme Corp", &pattern("acme%")));
        assert!(like("Acme", &pattern("a_me")));
        assert!(!like("Acme", &pattern("a_e")));
        assert!(like("50%", &[('5', false), ('0', false), ('%', true)]));
        assert!(!like("500", &[('5', false), ('0', false), ('%', true)]));
        assert!(like("", &pattern("%")));
    }
}
