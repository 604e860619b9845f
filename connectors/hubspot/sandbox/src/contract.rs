//! Validates JSON against HubSpot's OpenAPI files in `shared/contracts/hubspot`.
//!
//! Used by this crate's tests (every sandbox response must match the contract) and by the
//! HubSpot connector's tests (every request body it builds must match). Both sides checked
//! against the same files is what keeps the sandbox from drifting into agreeing with the
//! connector's bugs.
//!
//! How: the whole OpenAPI document is registered as one JSON Schema resource, and the schema to
//! check (a component, or an operation's request/response schema) is compiled with its
//! `#/components/...` references pointed into that resource, so every `$ref` resolves offline.
//! `jsonschema` is built without its HTTP/file resolvers: nothing is ever fetched.
//!
//! OpenAPI 3.0 schema objects are a draft-4/draft-7 dialect; they are compiled as draft 7,
//! where `$ref` siblings are ignored (as OpenAPI 3.0 says) and the OpenAPI-only keywords
//! (`example`, `nullable`, `discriminator`, …) are unknown keywords and therefore ignored. The
//! HubSpot files carry `"example": null` almost everywhere (which broke Prism, see
//! VALIDATION.md); as a keyword it is harmless here, so nothing is stripped. None of the files
//! use `nullable`, so no `null` is ever accepted where the contract says string. `format` is
//! validated (`date-time` matters for timestamps); unknown formats such as `int32` are ignored.
//!
//! The contracts folder is found next to the workspace (`../../../../shared/contracts/hubspot`
//! from this crate's manifest), or else at `$ENGINE_CONTRACTS_DIR` (either the `contracts`
//! folder or its `hubspot` folder). Compiled validators are cached per process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value, json};

/// The URI the OpenAPI document is registered under inside a validator.
const RESOURCE_URI: &str = "urn:hubspot-sandbox:openapi";

/// The environment variable that points at the contracts when the workspace layout does not.
pub const CONTRACTS_DIR_ENV: &str = "ENGINE_CONTRACTS_DIR";

/// One loaded OpenAPI file and the validators compiled from it.
struct Spec {
    doc: Value,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

fn specs() -> &'static Mutex<HashMap<String, Arc<Spec>>> {
    static SPECS: OnceLock<Mutex<HashMap<String, Arc<Spec>>>> = OnceLock::new();
    SPECS.get_or_init(Mutex::default)
}

/// The folder holding HubSpot's OpenAPI files (`crm-objects-contacts-v3.json`, …).
pub fn contracts_dir() -> Result<PathBuf, String> {
    let beside =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/contracts/hubspot");
    if beside.is_dir() {
        return Ok(beside);
    }
    if let Some(dir) = std::env::var_os(CONTRACTS_DIR_ENV).map(PathBuf::from) {
        for candidate in [dir.join("hubspot"), dir] {
            if candidate.join("crm-objects-contacts-v3.json").is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "HubSpot contracts not found at {} nor through ${CONTRACTS_DIR_ENV}",
        beside.display()
    ))
}

fn load(spec_file: &str) -> Result<Arc<Spec>, String> {
    let mut cache = specs().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(spec) = cache.get(spec_file) {
        return Ok(spec.clone());
    }
    let path = contracts_dir()?.join(spec_file);
    let text = fs_err::read_to_string(&path).map_err(|e| e.to_string())?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec = Arc::new(Spec {
        doc,
        validators: Mutex::default(),
    });
    cache.insert(spec_file.to_owned(), spec.clone());
    Ok(spec)
}

/// Follows local `$ref`s (`#/components/...`) within the document.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> Result<&'a Value, String> {
    for _ in 0..16 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return Ok(value);
        };
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| format!("external reference {reference} is not supported"))?;
        value = doc
            .pointer(pointer)
            .ok_or_else(|| format!("dangling reference {reference}"))?;
    }
    Err("reference chain too long".to_owned())
}

/// Points every local `$ref` of a schema at the registered document.
fn retarget_refs(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, value) in map {
                let value = match (key.as_str(), value) {
                    ("$ref", Value::String(r)) if r.starts_with('#') => {
                        Value::String(format!("{RESOURCE_URI}{r}"))
                    }
                    _ => retarget_refs(value),
                };
                out.insert(key.clone(), value);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(retarget_refs).collect()),
        other => other.clone(),
    }
}

fn validator(spec: &Spec, key: &str, schema: &Value) -> Result<Arc<Validator>, String> {
    let mut cache = spec
        .validators
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(validator) = cache.get(key) {
        return Ok(validator.clone());
    }
    let compiled = jsonschema::options()
        .with_draft(Draft::Draft7)
        .should_validate_formats(true)
        .with_resource(
            RESOURCE_URI,
            Draft::Draft7.create_resource(spec.doc.clone()),
        )
        .build(&retarget_refs(schema))
        .map_err(|e| format!("cannot compile the schema of {key}: {e}"))?;
    let compiled = Arc::new(compiled);
    cache.insert(key.to_owned(), compiled.clone());
    Ok(compiled)
}

fn check(validator: &Validator, value: &Value) -> Result<(), Vec<String>> {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|error| {
            let at = error.instance_path.to_string();
            format!("{}: {error}", if at.is_empty() { "/" } else { at.as_str() })
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// True when a concrete path (`/crm/v3/objects/contacts/42`) fits a template
/// (`/crm/v3/objects/contacts/{contactId}`).
fn path_matches(template: &str, path: &str) -> bool {
    let template: Vec<&str> = template.trim_end_matches('/').split('/').collect();
    let path: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}') && !p.is_empty()))
}

/// The operation object for a method and a path (a template or a concrete path; a query string
/// is ignored). Exact templates win over parameterised ones.
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> Result<(String, &'a Value), String> {
    let path = path.split('?').next().unwrap_or(path);
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("the file has no paths")?;
    let template = if paths.contains_key(path) {
        path.to_owned()
    } else {
        let mut candidates: Vec<&String> = paths.keys().filter(|t| path_matches(t, path)).collect();
        candidates.sort_by_key(|t| t.matches('{').count());
        candidates
            .first()
            .map(|t| (*t).clone())
            .ok_or_else(|| format!("no path in the contract matches {path}"))?
    };
    let method = method.to_ascii_lowercase();
    let op = paths
        .get(&template)
        .and_then(|item| item.get(&method))
        .ok_or_else(|| format!("{template} has no {} operation", method.to_uppercase()))?;
    Ok((template, op))
}

/// The schema of a `content` map: `application/json`, else `*/*` (HubSpot's error responses),
/// else the first media type.
fn media_schema(content: &Value) -> Option<&Value> {
    let content = content.as_object()?;
    content
        .get("application/json")
        .or_else(|| content.get("*/*"))
        .or_else(|| content.values().next())
        .and_then(|media| media.get("schema"))
}

fn no_body_expected(what: &str, body: &Value) -> Result<(), Vec<String>> {
    if body.is_null() {
        Ok(())
    } else {
        Err(vec![format!("{what} declares no body, got {body}")])
    }
}

/// Validates `value` against `#/components/schemas/<schema_name>` of `spec_file`.
pub fn validate_schema(
    spec_file: &str,
    schema_name: &str,
    value: &Value,
) -> Result<(), Vec<String>> {
    let spec = load(spec_file).map_err(|e| vec![e])?;
    let pointer = format!("/components/schemas/{schema_name}");
    if spec.doc.pointer(&pointer).is_none() {
        return Err(vec![format!("{spec_file} has no schema {schema_name}")]);
    }
    let schema = json!({"$ref": format!("#{pointer}")});
    let validator =
        validator(&spec, &format!("schema {schema_name}"), &schema).map_err(|e| vec![e])?;
    check(&validator, value)
}

/// Validates a request body against the operation's `requestBody` schema
/// (`path_template` may be a template or a concrete path).
pub fn validate_request(
    spec_file: &str,
    method: &str,
    path_template: &str,
    body: &Value,
) -> Result<(), Vec<String>> {
    let spec = load(spec_file).map_err(|e| vec![e])?;
    let (template, op) = operation(&spec.doc, method, path_template).map_err(|e| vec![e])?;
    let what = format!("request {} {template}", method.to_uppercase());
    let Some(request_body) = op.get("requestBody") else {
        return no_body_expected(&what, body);
    };
    let request_body = resolve(&spec.doc, request_body).map_err(|e| vec![e])?;
    let schema = request_body
        .get("content")
        .and_then(media_schema)
        .ok_or_else(|| vec![format!("{what} has no JSON schema")])?;
    let validator = validator(&spec, &what, schema).map_err(|e| vec![e])?;
    check(&validator, body)
}

/// Validates a response body against the operation's schema for `status` (or its `default`
/// response, which HubSpot uses for errors).
pub fn validate_response(
    spec_file: &str,
    method: &str,
    path_template: &str,
    status: u16,
    body: &Value,
) -> Result<(), Vec<String>> {
    let spec = load(spec_file).map_err(|e| vec![e])?;
    let (template, op) = operation(&spec.doc, method, path_template).map_err(|e| vec![e])?;
    let responses = op
        .get("responses")
        .ok_or_else(|| vec![format!("{template} has no responses")])?;
    let code = status.to_string();
    let class = format!("{}XX", status / 100);
    let (declared, response) = [code.as_str(), class.as_str(), "default"]
        .into_iter()
        .find_map(|key| responses.get(key).map(|r| (key, r)))
        .ok_or_else(|| {
            vec![format!(
                "{template} declares no response for status {status}"
            )]
        })?;
    let what = format!(
        "response {status} ({declared}) of {} {template}",
        method.to_uppercase()
    );
    let response = resolve(&spec.doc, response).map_err(|e| vec![e])?;
    let Some(schema) = response.get("content").and_then(media_schema) else {
        return no_body_expected(&what, body);
    };
    let validator = validator(&spec, &what, schema).map_err(|e| vec![e])?;
    check(&validator, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTACTS: &str = "crm-objects-contacts-v3.json";

    #[test]
    fn component_schema() {
        let good = json!({"id": "1", "properties": {"email": "a@b.co"}});
        assert_eq!(
            validate_schema(CONTACTS, "SimplePublicObjectBatchInputUpsert", &good),
            Ok(())
        );
        let bad = json!({"properties": {"age": 42}});
        let errors = validate_schema(CONTACTS, "SimplePublicObjectBatchInputUpsert", &bad)
            .err()
            .unwrap_or_default();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(validate_schema(CONTACTS, "NoSuchSchema", &good).is_err());
    }

    #[test]
    fn request_and_error_response() {
        let body = json!({"inputs": [{"idProperty": "email", "id": "a@b.co", "properties": {}}]});
        let path = "/crm/v3/objects/contacts/batch/upsert";
        assert_eq!(validate_request(CONTACTS, "POST", path, &body), Ok(()));
        assert!(validate_request(CONTACTS, "POST", path, &json!({"records": []})).is_err());
        let error = json!({
            "status": "error", "message": "x", "category": "VALIDATION_ERROR",
            "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
        });
        assert_eq!(
            validate_response(CONTACTS, "POST", path, 400, &error),
            Ok(())
        );
        assert!(validate_response(CONTACTS, "POST", path, 400, &json!({"message": "x"})).is_err());
    }

    #[test]
    fn nested_refs_are_followed() {
        let path = "/crm/v3/objects/contacts/batch/upsert";
        let error = json!({"status": "error", "category": "CONFLICT", "message": "x",
            "context": {"ids": ["1"]}, "errors": []});
        let body = json!({"status": "COMPLETE", "results": [], "numErrors": 1, "errors": [error],
            "startedAt": "2024-01-01T00:00:00.000Z", "completedAt": "2024-01-01T00:00:00.000Z"});
        let errors = validate_response(CONTACTS, "POST", path, 207, &body)
            .err()
            .unwrap_or_default();
        assert!(errors.iter().any(|e| e.contains("links")), "{errors:?}");
    }

    #[test]
    fn concrete_paths_match_templates() {
        assert!(path_matches(
            "/crm/v3/objects/contacts/{contactId}",
            "/crm/v3/objects/contacts/7"
        ));
        assert!(!path_matches(
            "/crm/v3/objects/contacts/{contactId}",
            "/crm/v3/objects/contacts"
        ));
        let record = json!({
            "id": "7", "properties": {}, "archived": false,
            "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z",
        });
        let path = "/crm/v3/objects/contacts/7?idProperty=email";
        assert_eq!(
            validate_response(CONTACTS, "GET", path, 200, &record),
            Ok(())
        );
        let bad_time = json!({
            "id": "7", "properties": {}, "archived": false,
            "createdAt": "yesterday", "updatedAt": "2024-01-01T00:00:00.000Z",
        });
        assert!(validate_response(CONTACTS, "GET", path, 200, &bad_time).is_err());
    }
}
