//! The discovery routes: resources by version, limits, describe global and describe of one
//! object (FACTS D1, L3).

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Call, visible};
use crate::errors::ApiError;
use crate::respond;
use crate::state::lock;

/// `GET /services/data/vXX.X/`: the resources of a version.
pub(super) fn resources(call: &Call<'_>) -> Result<Response, ApiError> {
    if call.method != Method::GET {
        return Err(call.method_not_allowed("HEAD,GET"));
    }
    let base = format!("/services/data/v{}", call.version);
    Ok(respond::ok(&json!({
        "sobjects": format!("{base}/sobjects"),
        "query": format!("{base}/query"),
        "queryAll": format!("{base}/queryAll"),
        "limits": format!("{base}/limits"),
        "composite": format!("{base}/composite"),
        "jobs": format!("{base}/jobs"),
    })))
}

/// `GET /limits`: the daily API allocation as `DailyApiRequests` (FACTS L3), and the Bulk
/// allocations (FACTS L5), which the sandbox reports but does not count.
pub(super) fn limits(call: &Call<'_>) -> Result<Response, ApiError> {
    if call.method != Method::GET {
        return Err(call.method_not_allowed("HEAD,GET"));
    }
    let allocation = *lock(&call.shared.allocation);
    let pair = |max: u64, remaining: u64| json!({"Max": max, "Remaining": remaining});
    Ok(respond::ok(&json!({
        "DailyApiRequests": pair(allocation.max, allocation.max.saturating_sub(allocation.used)),
        "DailyBulkApiBatches": pair(15_000, 15_000),
        "DailyBulkV2QueryJobs": pair(10_000, 10_000),
        "DailyBulkV2QueryFileStorageMB": pair(976_562, 976_562),
        "ConcurrentAsyncGetReportInstances": pair(200, 200),
    })))
}

/// `GET /sobjects`: every object the user can see.
pub(super) fn global(call: &Call<'_>) -> Result<Response, ApiError> {
    if call.method != Method::GET {
        return Err(call.method_not_allowed("HEAD,GET"));
    }
    let store = lock(&call.shared.store);
    let faults = lock(&call.shared.faults).clone();
    let sobjects: Vec<Value> = store
        .objects()
        .filter(|(_, def)| !faults.hides(&def.name))
        .map(|(_, def)| def.summary(&call.version))
        .collect();
    Ok(respond::ok(&json!({
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": sobjects,
    })))
}

/// `GET /sobjects/{SObject}/describe`.
pub(super) fn object(call: &Call<'_>, name: &str) -> Result<Response, ApiError> {
    if call.method != Method::GET {
        return Err(call.method_not_allowed("HEAD,GET"));
    }
    let store = lock(&call.shared.store);
    let key = visible(call.shared, &store, name)?;
    Ok(respond::ok(&store.def(key).describe(&call.version)))
}
