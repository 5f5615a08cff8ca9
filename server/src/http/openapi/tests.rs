use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use super::{PATH, document};

/// Routes the router serves on purpose without describing them in the
/// document, each with the reason. None so far: the sync endpoint is in it
/// (its messages are docs/PROTOCOL.md's), and the web app's files are the
/// router's fallback, not routes.
const UNDESCRIBED: &[(Method, &str, &str)] = &[(
    Method::GET,
    "/metrics",
    "a JSON 404 on the main address, so that a proxy in front of it never passes the app's page off as metrics; \
     the metrics are Prometheus text on --metrics-addr, not an API of this document",
)];

/// The methods a route can take in axum; HEAD comes with GET by itself.
const METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

const OPERATION_KEYS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn parsed() -> Value {
    serde_json::from_str(document()).expect("the document is JSON")
}

/// The (method, path) of every operation in the document, with the operation.
fn described(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths is an object") {
        for key in OPERATION_KEYS {
            if let Some(operation) = item.get(key) {
                out.insert((key.to_uppercase(), path.clone()), operation.clone());
            }
        }
    }
    out
}

/// Every path the router routes, as axum keeps it (`/api/v1/admin/accounts/{id}`).
///
/// axum has no public list of routes, but its `Debug` form prints its path
/// router's table, `RouteId(n): "/path"`. Reading the router itself, rather
/// than a list kept beside it, means a route added anywhere (another
/// `.route`, a `.merge`, a `.nest`) is seen. Should axum print something
/// else one day, this finds no paths and the test fails: it cannot pass by
/// finding nothing.
fn routed_paths(router: &Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    // The fallback router routes `/` and a catch-all to the web app's files.
    let routes = debug.split("fallback_router").next().unwrap_or_default();
    let mut paths = BTreeSet::new();
    for piece in routes.split("RouteId(").skip(1) {
        let Some((_, rest)) = piece.split_once("): \"") else { continue };
        if let Some((path, _)) = rest.split_once('"') {
            paths.insert(path.to_owned());
        }
    }
    assert!(
        paths.contains("/healthz") && paths.contains(PATH),
        "could not read the routes from the router's Debug form; did axum change it? {paths:?}"
    );
    paths
}

/// A path the route matches: every `{parameter}` segment is `x`.
fn concrete(path: &str) -> String {
    path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/")
}

/// What the router answers a request without a token or a body.
async fn answer(router: &Router, method: &Method, path: &str) -> axum::response::Response {
    let request = Request::builder().method(method).uri(concrete(path)).body(Body::empty()).expect("a request");
    router.clone().oneshot(request).await.unwrap_or_else(|never| match never {})
}

/// The document describes exactly the routes the router serves.
///
/// Both sides come from the running code, neither from a list kept by
/// hand: the router's paths from the router itself ([`routed_paths`]), and
/// for each path the methods it takes by asking it with each method, without
/// a token: a method the route does not take is answered `405` by the
/// router's method fallback, any other by the route (its handler, or the
/// token check before it). The set of (method, path) served must equal the
/// set of operations in the served document, less [`UNDESCRIBED`]: a route
/// added without its `#[utoipa::path]` in [`super::ApiDoc`] fails, and so
/// does an operation the router does not serve (a misspelt path, a wrong
/// method). The same requests check the security the document claims: an
/// operation with the bearer scheme answers `401` without a token, one
/// without it does not.
#[tokio::test]
async fn the_document_describes_every_route_and_nothing_else() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let prepared = crate::prepare(&crate::Config::for_tests(dir.path().to_owned())).await.expect("a server state");
    let router = super::super::app(prepared.state.clone());

    let mut served = BTreeMap::new();
    for path in routed_paths(&router) {
        for method in &METHODS {
            let status = answer(&router, method, &path).await.status();
            if status != StatusCode::METHOD_NOT_ALLOWED {
                served.insert((method.to_string(), path.clone()), status);
            }
        }
    }
    let described = described(&parsed());
    let exempt: BTreeSet<(String, String)> =
        UNDESCRIBED.iter().map(|(m, p, _)| (m.to_string(), (*p).to_owned())).collect();
    for (method, path, reason) in UNDESCRIBED {
        assert!(!reason.is_empty(), "{method} {path} needs a reason to be left out");
    }

    let routed: BTreeSet<_> = served.keys().filter(|k| !exempt.contains(*k)).cloned().collect();
    let documented: BTreeSet<_> = described.keys().cloned().collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty() && unrouted.is_empty(),
        "routes the OpenAPI document does not describe: {missing:?}; operations of the document no route serves: \
         {unrouted:?}"
    );
    assert!(exempt.iter().all(|k| served.contains_key(k)), "an exception names no route: {exempt:?}");

    for (key, operation) in &described {
        let status = served[key];
        let secured = operation.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
        assert_eq!(
            status == StatusCode::UNAUTHORIZED,
            secured,
            "{key:?} answers {status} without a token, but its security in the document is {:?}",
            operation.get("security")
        );
    }
}

#[tokio::test]
async fn the_document_is_served_as_it_is_built() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let prepared = crate::prepare(&crate::Config::for_tests(dir.path().to_owned())).await.expect("a server state");
    let response = answer(&super::super::app(prepared.state.clone()), &Method::GET, PATH).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("the body");
    assert_eq!(body, document().as_bytes());
}

/// Every `"$ref"` under `value`, with where it is.
fn refs<'a>(value: &'a Value, at: &str, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref"
                    && let Some(target) = v.as_str()
                {
                    out.push((at.to_owned(), target));
                }
                refs(v, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let doc = parsed();
    let version = doc["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3.1."), "{version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let mut found = Vec::new();
    refs(&doc, "", &mut found);
    assert!(found.len() > 20, "the schemas are referenced, not inlined: {} references", found.len());
    for (at, target) in found {
        let pointer = target.strip_prefix('#').unwrap_or_else(|| panic!("{at}: {target} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{at}: {target} resolves to nothing");
    }

    let schemes = &doc["components"]["securitySchemes"];
    let mut ids = BTreeSet::new();
    for ((method, path), operation) in described(&doc) {
        let what = format!("{method} {path}");
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{what} has no operationId"));
        assert!(ids.insert(id.to_owned()), "{what}: operationId {id} is used twice");
        assert!(operation["description"].as_str().is_some_and(|d| !d.is_empty()), "{what} has no description");
        // Without its own, utoipa takes a handler's doc comment, written for this code's readers.
        assert!(operation["summary"].as_str().is_some_and(|s| !s.contains('\n')), "{what} has no summary of its own");
        let responses = operation["responses"].as_object().unwrap_or_else(|| panic!("{what} has no responses"));
        assert!(responses.keys().any(|s| s.starts_with('2')), "{what} has no success answer");
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for scheme in requirement.as_object().into_iter().flat_map(|r| r.keys()) {
                assert!(schemes.get(scheme).is_some(), "{what} names an unknown security scheme {scheme}");
            }
        }
        // Every error answer has the error body, but the health check's
        // 503, which is its report (a load balancer reads the same shape).
        for (status, answer) in responses
            .iter()
            .filter(|(s, _)| s.starts_with(['4', '5']))
            .filter(|(s, _)| !(what == "GET /healthz" && s.as_str() == "503"))
        {
            let answer = match answer.get("$ref").and_then(Value::as_str) {
                Some(target) => doc.pointer(&target[1..]).expect("resolved above"),
                None => answer,
            };
            assert_eq!(
                answer["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                "{what} {status}"
            );
        }
    }
}

/// The parameter `name` of the operation `method path`.
fn parameter<'a>(doc: &'a Value, method: &str, path: &str, name: &str) -> &'a Value {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
}

/// The values of the enumeration a schema is or refers to (through an
/// `Option`'s `oneOf`).
fn enum_values(doc: &Value, schema: &Value) -> Vec<String> {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        return enum_values(doc, doc.pointer(&target[1..]).expect("a resolved reference"));
    }
    let mut out: Vec<String> =
        schema["enum"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect();
    for key in ["oneOf", "anyOf", "allOf"] {
        for s in schema[key].as_array().into_iter().flatten() {
            out.extend(enum_values(doc, s));
        }
    }
    out
}

/// Bounds the document states as numbers are the code's constants, and
/// the values it lists are the ones the handlers take.
#[test]
fn bounds_and_values_are_the_codes() {
    let doc = parsed();
    let wait = parameter(&doc, "get", "/api/v1/changes", "wait");
    assert_eq!(wait["schema"]["maximum"], crate::changes::MAX_WAIT.as_secs());
    let per_page = parameter(&doc, "get", "/api/v1/models", "per_page");
    assert_eq!(per_page["schema"]["maximum"], crate::model_list::MAX_PER_PAGE);
    assert_eq!(per_page["schema"]["default"], crate::model_list::DEFAULT_PER_PAGE);
    let q = parameter(&doc, "get", "/api/v1/models", "q");
    assert_eq!(q["schema"]["maxLength"], crate::model_list::MAX_QUERY_CHARS);

    let groups = enum_values(&doc, &parameter(&doc, "get", "/api/v1/reports/rollup", "group")["schema"]);
    assert_eq!(groups.len(), 2 + crate::org::Level::ALL.len(), "{groups:?}");
    for group in &groups {
        assert!(crate::reports::Grouping::parse(group).is_ok(), "group={group} is refused");
    }
    assert_eq!(super::super::default_group(), "field");

    let charts = enum_values(&doc, &parameter(&doc, "get", "/api/v1/reports/charts/{chart}", "chart")["schema"]);
    assert_eq!(charts, ["records.svg", "incidents.svg", "targets.svg"]);
    let formats = enum_values(&doc, &parameter(&doc, "get", "/api/v1/reports/rollup", "format")["schema"]);
    assert_eq!(formats, ["json", "csv", "xlsx"]);
    let roles = enum_values(&doc, &doc["components"]["schemas"]["Role"]);
    assert_eq!(roles, ["volunteer", "commune_staff", "province_staff", "admin"]);
}
