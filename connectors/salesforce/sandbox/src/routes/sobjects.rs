//! Single-record routes: `POST /sobjects/{SObject}`, `GET|PATCH|DELETE
//! /sobjects/{SObject}/{id}`, and by external id `GET|PATCH|DELETE
//! /sobjects/{SObject}/{field}/{value}` with 201 / 200 `created:false` / 300 (FACTS U1, U2).
//!
//! Errors refuse the request with the REST array (FACTS E1): a record error is a 400 whose
//! entry carries `errorCode` and `fields`. An update of an existing record by external id
//! answers 200 with `created:false` from API 46.0 on and 204 before (FACTS U1 says "older
//! versions"; 46.0 is when Salesforce added the body to the answer, as it did for the
//! Collections upsert).

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{Call, visible};
use crate::errors::{ApiError, RecordError, code};
use crate::ids;
use crate::respond;
use crate::schema::{FieldDef, ObjectDef};
use crate::state::lock;
use crate::store::{ObjectKey, Store};
use crate::write::{self, Entry, Mode};

/// The first version whose external-id update answers 200 with a body (before: 204).
const UPSERT_BODY_SINCE: f64 = 46.0;

/// A JSON body that must be an object (a record, or a Collections request).
pub(super) fn object_body(call: &Call<'_>) -> Result<Map<String, Value>, ApiError> {
    match respond::parse_json(&call.body)? {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::bad_request(
            code::JSON_PARSER_ERROR,
            format!(
                "Cannot deserialize instance of object from {} value or request may be missing a required field",
                if other.is_array() {
                    "START_ARRAY"
                } else {
                    "VALUE"
                }
            ),
        )),
    }
}

/// The fields a comma-separated list names (all when `None`); 400 `INVALID_FIELD` for one
/// the object lacks.
pub(super) fn select_fields<'d>(
    def: &'d ObjectDef,
    list: Option<&str>,
) -> Result<Option<Vec<&'d FieldDef>>, ApiError> {
    let Some(list) = list.filter(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    list.split(',')
        .map(str::trim)
        .map(|name| {
            def.field(name).ok_or_else(|| {
                ApiError::bad_request(
                    code::INVALID_FIELD,
                    format!(
                        "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                        def.name
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A record error as a single-record answer: 400 with the error array.
fn refused(error: RecordError) -> ApiError {
    ApiError::from_record(StatusCode::BAD_REQUEST, error)
}

/// `{"id","success":true,"errors":[]}` (plus `created` for an upsert).
fn save_result(id: &str, created: Option<bool>) -> Value {
    let mut body = json!({"id": id, "success": true, "errors": []});
    if let Some(created) = created {
        body["created"] = json!(created);
    }
    body
}

/// 201 with a save result and the record's `Location`.
fn created(call: &Call<'_>, object: &str, id: &str, upsert: bool) -> Response {
    let mut response = respond::json(
        StatusCode::CREATED,
        &save_result(id, upsert.then_some(true)),
    );
    let location = format!("/services/data/v{}/sobjects/{object}/{id}", call.version);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Creates one record from a JSON body; the id, or the answer refusing it.
fn create_record(
    store: &mut Store,
    key: ObjectKey,
    body: &Map<String, Value>,
    extra: Option<Entry>,
) -> Result<String, ApiError> {
    let mut draft = write::decode_json(store, key, body, &["attributes"])?;
    if let Some(entry) = extra {
        draft.entries.push(entry);
    }
    let values = write::check(store, key, draft, Mode::Create).map_err(refused)?;
    Ok(store.insert(key, write::into_map(values), Utc::now(), None))
}

/// `GET /sobjects/{SObject}` (basic information) and `POST /sobjects/{SObject}` (create).
pub(super) fn object_root(call: &Call<'_>, name: &str) -> Result<Response, ApiError> {
    let mut store = lock(&call.shared.store);
    let key = visible(call.shared, &store, name)?;
    match call.method {
        Method::GET => Ok(respond::ok(&json!({
            "objectDescribe": store.def(key).summary(&call.version),
            "recentItems": [],
        }))),
        Method::POST => {
            let body = object_body(call)?;
            let id = create_record(&mut store, key, &body, None)?;
            Ok(created(call, &store.def(key).name, &id, false))
        }
        _ => Err(call.method_not_allowed("HEAD,GET,POST")),
    }
}

/// The live record `id` names in `key`'s table: its 18-character id, or 404 (`NOT_FOUND`, or
/// `ENTITY_IS_DELETED` for a deleted one).
fn live_id(store: &Store, key: ObjectKey, id: &str) -> Result<String, ApiError> {
    let id = ids::normalize(id).ok_or_else(ApiError::not_found)?;
    let table = store.table(key);
    if table.get(&id).is_some() {
        Ok(id)
    } else if table.was_deleted(&id) {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            code::ENTITY_IS_DELETED,
            "entity is deleted",
        ))
    } else {
        Err(ApiError::not_found())
    }
}

/// `GET|PATCH|DELETE /sobjects/{SObject}/{id}`, and `POST /sobjects/{SObject}/Id` (FACTS U2).
pub(super) fn by_id(call: &Call<'_>, name: &str, id: &str) -> Result<Response, ApiError> {
    let mut store = lock(&call.shared.store);
    let key = visible(call.shared, &store, name)?;
    if call.method == Method::POST && id.eq_ignore_ascii_case("Id") {
        let body = object_body(call)?;
        let id = create_record(&mut store, key, &body, None)?;
        return Ok(created(call, &store.def(key).name, &id, true));
    }
    match call.method {
        Method::GET => {
            let id = live_id(&store, key, id)?;
            let def = store.def(key);
            let fields = select_fields(def, call.param("fields"))?;
            let record = store.table(key).get(&id).ok_or_else(ApiError::not_found)?;
            Ok(respond::ok(&store.render(
                key,
                record,
                fields.as_deref(),
                &call.version,
            )))
        }
        Method::PATCH => {
            let id = live_id(&store, key, id)?;
            let body = object_body(call)?;
            update_record(&mut store, key, &id, &body)?;
            Ok(respond::no_content())
        }
        Method::DELETE => {
            let id = live_id(&store, key, id)?;
            store.delete(key, &id, None);
            Ok(respond::no_content())
        }
        _ => Err(call.method_not_allowed("HEAD,GET,PATCH,DELETE")),
    }
}

/// Updates one record from a JSON body.
fn update_record(
    store: &mut Store,
    key: ObjectKey,
    id: &str,
    body: &Map<String, Value>,
) -> Result<(), ApiError> {
    let draft = write::decode_json(store, key, body, &["attributes"])?;
    let record = store
        .table(key)
        .get(id)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    let changes = write::check(store, key, draft, Mode::Update(&record)).map_err(refused)?;
    store.update(key, id, changes, Utc::now(), None);
    Ok(())
}

/// 300 Multiple Choices: the URLs of the records an external id matched (FACTS U1, E2).
fn multiple_choices(call: &Call<'_>, object: &str, ids: &[String]) -> Response {
    let urls: Vec<String> = ids
        .iter()
        .map(|id| format!("/services/data/v{}/sobjects/{object}/{id}", call.version))
        .collect();
    respond::json(StatusCode::MULTIPLE_CHOICES, &json!(urls))
}

/// The external-id field a URL names: 404 when the object has no such field (Salesforce's
/// "Provided external ID field does not exist or is not accessible"), 400 `INVALID_FIELD`
/// when it is neither an external id nor an indexed lookup field.
pub(super) fn external_id_field<'d>(
    def: &'d ObjectDef,
    name: &str,
) -> Result<&'d FieldDef, ApiError> {
    let field = def.field(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            format!("Provided external ID field does not exist or is not accessible: {name}"),
        )
    })?;
    if !field.is_indexed() {
        return Err(ApiError::bad_request(
            code::INVALID_FIELD,
            format!(
                "Field name provided, {} is not an External ID or indexed field for {}",
                field.name, def.name
            ),
        ));
    }
    Ok(field)
}

/// `GET|PATCH|DELETE /sobjects/{SObject}/{field}/{value}` (FACTS U1).
pub(super) fn by_external_id(
    call: &Call<'_>,
    name: &str,
    field_name: &str,
    value: &str,
) -> Result<Response, ApiError> {
    let mut store = lock(&call.shared.store);
    let key = visible(call.shared, &store, name)?;
    let def = store.def(key).clone();
    let field = external_id_field(&def, field_name)?;
    if field.name == "Id" {
        return by_id(call, name, value).map(IntoResponse::into_response);
    }
    let matches: Vec<String> = store
        .table(key)
        .lookup(&field.name, &json!(value))
        .iter()
        .map(|r| r.id.clone())
        .collect();
    if matches.len() > 1 {
        return Ok(multiple_choices(call, &def.name, &matches));
    }
    let found = matches.into_iter().next();
    match (&call.method, found) {
        (&Method::GET, None) | (&Method::DELETE, None) => Err(ApiError::not_found()),
        (&Method::GET, Some(id)) => {
            let fields = select_fields(&def, call.param("fields"))?;
            let record = store.table(key).get(&id).ok_or_else(ApiError::not_found)?;
            Ok(respond::ok(&store.render(
                key,
                record,
                fields.as_deref(),
                &call.version,
            )))
        }
        (&Method::DELETE, Some(id)) => {
            store.delete(key, &id, None);
            Ok(respond::no_content())
        }
        (&Method::PATCH, found) => {
            let mut body = object_body(call)?;
            if body.keys().any(|k| k.eq_ignore_ascii_case("Id")) {
                return Err(ApiError::bad_request(
                    code::INVALID_FIELD,
                    "Id is not allowed in the body of an upsert by external id",
                ));
            }
            if let Some(given) = body
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&field.name))
                .map(|(k, v)| (k.clone(), v.clone()))
            {
                let same = match &given.1 {
                    Value::String(text) => text.eq_ignore_ascii_case(value),
                    other => serde_json::from_str::<Value>(value).is_ok_and(|v| v == *other),
                };
                if !same {
                    return Err(ApiError::bad_request(
                        code::INVALID_FIELD,
                        format!(
                            "The value of {} in the body does not match the one in the URL",
                            field.name
                        ),
                    ));
                }
                body.remove(&given.0);
            }
            match found {
                Some(id) => {
                    update_record(&mut store, key, &id, &body)?;
                    let newer = call.version.parse::<f64>().unwrap_or(0.0) >= UPSERT_BODY_SINCE;
                    Ok(if newer {
                        respond::ok(&save_result(&id, Some(false)))
                    } else {
                        respond::no_content()
                    })
                }
                None if call.param("updateOnly") == Some("true") => Err(ApiError::not_found()),
                None => {
                    let ext = write::decode_json(
                        &store,
                        key,
                        &Map::from_iter([(field.name.clone(), json!(value))]),
                        &[],
                    )?;
                    let entry = ext.entries.into_iter().next();
                    let id = create_record(&mut store, key, &body, entry)?;
                    Ok(created(call, &def.name, &id, true))
                }
            }
        }
        _ => Err(call.method_not_allowed("HEAD,GET,PATCH,DELETE")),
    }
}
