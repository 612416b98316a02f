//! The vendors' specs as JSON Schema: loading `../shared/specs`, finding an operation's
//! response schema, the documented quirks applied to the schemas, and validation with the
//! `jsonschema` crate (`$ref`s resolve inside a root that carries the document's
//! `components/schemas` or `definitions`, pruned to what the response schema reaches).

use std::{collections::BTreeSet, path::PathBuf};

use serde_json::{json, Map, Value};

/// Which vendor document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Vendor {
    ConnectWise,
    Autotask,
    Platform,
}

impl Vendor {
    pub fn file(self) -> &'static str {
        match self {
            Vendor::ConnectWise => "connectwise-manage.partial.openapi.json",
            Vendor::Autotask => "autotask-rest.swagger.json",
            Vendor::Platform => "acronis-account-management-v2.openapi.json",
        }
    }
    /// Where the document's paths start inside the fake's paths.
    pub fn prefix(self) -> &'static str {
        match self {
            Vendor::ConnectWise => "/{codebase}/apis/3.0",
            Vendor::Autotask => "/ATServicesRest",
            Vendor::Platform => "/api/2",
        }
    }
    fn defs_pointer(self) -> &'static str {
        match self {
            Vendor::Autotask => "/definitions",
            _ => "/components/schemas",
        }
    }
}

/// `../shared/specs` of the repository root (CI: a fresh clone with `shared/` beside it).
pub fn specs_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs");
    assert!(
        dir.join(Vendor::Autotask.file()).is_file(),
        "conformance: the vendor specs are missing: expected them in {} (the repository's \
         ../shared/specs; CI copies shared/ beside the clone)",
        dir.display()
    );
    dir
}

pub struct Spec {
    pub vendor: Vendor,
    doc: Value,
}

/// The same template, whatever the parameter names: `/a/{x}/b` ~ `/a/{id}/b`.
pub fn shape(template: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in template.chars() {
        match c {
            '{' => {
                depth += 1;
                out.push_str("{}");
            }
            '}' => depth -= 1,
            _ if depth > 0 => {}
            c => out.push(c.to_ascii_lowercase()),
        }
    }
    out
}

impl Spec {
    pub fn load(vendor: Vendor) -> Spec {
        let path = specs_dir().join(vendor.file());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("conformance: cannot read {}: {e}", path.display()));
        let mut doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("conformance: {} is not JSON: {e}", path.display()));
        sanitize_refs(vendor.defs_pointer(), &mut doc);
        let defs = doc.pointer_mut(vendor.defs_pointer()).expect("definitions");
        prepare(vendor, defs);
        Spec { vendor, doc }
    }

    /// The spec path of a fake route template (`None`: the document has no such path).
    pub fn path_of(&self, fake_route: &str) -> Option<String> {
        let rest = fake_route.strip_prefix(self.vendor.prefix())?;
        let want = shape(rest);
        self.doc["paths"]
            .as_object()?
            .keys()
            .find(|k| shape(k) == want)
            .cloned()
    }

    /// The documented response of `method path` for `status`: `Ok(Some(schema))`, `Ok(None)`
    /// for a response without a body, `Err` when the spec lists no such operation or status.
    pub fn response(&self, method: &str, path: &str, status: u16) -> Result<Option<Value>, String> {
        let op = self.doc["paths"][path]
            .get(method.to_ascii_lowercase())
            .ok_or_else(|| format!("the spec has no {method} {path}"))?;
        let resp = op["responses"]
            .get(status.to_string())
            .or_else(|| op["responses"].get("default"))
            .ok_or_else(|| {
                let listed: Vec<&String> = op["responses"]
                    .as_object()
                    .map(|o| o.keys().collect())
                    .unwrap_or_default();
                format!("the spec lists {listed:?} for {method} {path}, not {status}")
            })?;
        let schema = match self.vendor {
            Vendor::Autotask => resp.get("schema").cloned(),
            _ => resp
                .get("content")
                .and_then(Value::as_object)
                .and_then(|c| c.values().find_map(|m| m.get("schema").cloned())),
        };
        Ok(schema.map(|mut s| {
            sanitize_refs(self.vendor.defs_pointer(), &mut s);
            prepare_schema(self.vendor, &mut s);
            s
        }))
    }

    /// Validates `body` against `schema`; the errors as text.
    pub fn validate(&self, schema: &Value, body: &Value) -> Vec<String> {
        let defs = self.doc.pointer(self.vendor.defs_pointer()).expect("defs");
        let mut used = BTreeSet::new();
        collect_refs(schema, defs, self.vendor.defs_pointer(), &mut used);
        let pruned: Map<String, Value> = used
            .iter()
            .filter_map(|k| defs.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        let mut root = json!({ "allOf": [schema] });
        match self.vendor {
            Vendor::Autotask => root["definitions"] = Value::Object(pruned),
            _ => root["components"] = json!({ "schemas": pruned }),
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .should_ignore_unknown_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("conformance: the spec's schema does not compile: {e}"));
        validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .take(8)
            .collect()
    }
}

/// Definition names as URI-safe keys: the Swagger's `QueryActionResult[CompanyModel,Account]`
/// is not a valid URI reference (renamed in the definitions and in every `$ref`).
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn sanitize_refs(pointer: &str, doc: &mut Value) {
    fn walk(v: &mut Value, prefix: &str) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get_mut("$ref") {
                    if let Some(name) = r.strip_prefix(prefix) {
                        *r = format!("{prefix}{}", safe_name(name));
                    }
                }
                o.values_mut().for_each(|x| walk(x, prefix));
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, prefix)),
            _ => {}
        }
    }
    walk(doc, &format!("#{pointer}/"));
    if let Some(Value::Object(defs)) = doc.pointer_mut(pointer) {
        let renamed: Map<String, Value> = std::mem::take(defs)
            .into_iter()
            .map(|(k, v)| (safe_name(&k), v))
            .collect();
        *defs = renamed;
    }
}

fn collect_refs(v: &Value, defs: &Value, pointer: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                let name = r
                    .strip_prefix('#')
                    .and_then(|r| r.strip_prefix(pointer))
                    .and_then(|r| r.strip_prefix('/'))
                    .unwrap_or(r)
                    .replace("~1", "/")
                    .replace("~0", "~");
                if out.insert(name.clone()) {
                    if let Some(d) = defs.get(&name) {
                        collect_refs(d, defs, pointer, out);
                    }
                }
            }
            for x in o.values() {
                collect_refs(x, defs, pointer, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, defs, pointer, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Spec quirks the test tolerates (the short documented list; see the test's module doc)
// ---------------------------------------------------------------------------------------------

/// Fields the real APIs send as `null` although the schema types them without `null`.
/// `(vendor, definition, property)`; `"*"` = every property of every definition.
pub const NULL_QUIRKS: &[(Vendor, &str, &str)] = &[
    // Q1: Autotask answers carry every field, unset ones as null; the Swagger 2.0 document
    // has no nullability at all.
    (Vendor::Autotask, "*", "*"),
    // Q2: ConnectWise sends unset references as null (a company without a default contact),
    // the partial document types them as plain `$ref` objects.
    (Vendor::ConnectWise, "Company", "defaultContact"),
    (Vendor::ConnectWise, "Addition", "invoiceDescription"),
    (Vendor::ConnectWise, "Addition", "cancelledDate"),
    (Vendor::ConnectWise, "Agreement", "endDate"),
    (Vendor::ConnectWise, "Agreement", "dateCancelled"),
    (Vendor::ConnectWise, "Agreement", "startDate"),
    (Vendor::ConnectWise, "Ticket", "contact"),
    (Vendor::ConnectWise, "Ticket", "initialDescription"),
    (Vendor::ConnectWise, "CallbackEntry", "payloadVersion"),
    (Vendor::ConnectWise, "Addition", "effectiveDate"),
    // Q2: the platform sends a tenant without a contact as `contact: null` (the schema: an
    // object), and a client not used yet with `last_access_from_ip: null`.
    (Vendor::Platform, "tenant", "contact"),
    (Vendor::Platform, "tenantBatch", "contact"),
    (Vendor::Platform, "client", "last_access_from_ip"),
];

/// Q3: the platform's record timestamps are zone-less (`2026-11-22T00:00:00.000000`, as the
/// vendor's own examples): `format: date-time` is not asserted for the platform.
fn strip_date_time(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.get("format").and_then(Value::as_str) == Some("date-time") {
                o.remove("format");
            }
            o.values_mut().for_each(strip_date_time);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_date_time),
        _ => {}
    }
}

/// Q4: the Swagger's empty object definitions are generator artifacts for .NET types it
/// could not describe: `Object` (`OperationResultModel.itemId`, the new record's integer id)
/// and enums such as `RestUserAccessLevel` (`"All"`): any value.
fn autotask_object_is_any(defs: &mut Value) {
    let Some(defs) = defs.as_object_mut() else {
        return;
    };
    for d in defs.values_mut() {
        if *d == json!({"type": "object", "properties": {}}) || *d == json!({"type": "object"}) {
            *d = json!({});
        }
    }
}

/// OpenAPI 3.0 `nullable: true` is `type: [T, "null"]` in JSON Schema.
fn nullable_to_types(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.values_mut().for_each(nullable_to_types);
            if o.remove("nullable").and_then(|n| n.as_bool()) == Some(true) {
                if let Some(Value::String(t)) = o.get("type").cloned() {
                    o.insert("type".into(), json!([t, "null"]));
                    if let Some(Value::Array(e)) = o.get_mut("enum") {
                        e.push(Value::Null);
                    }
                } else {
                    let rest = std::mem::take(o);
                    o.insert("anyOf".into(), json!([rest, {"type": "null"}]));
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(nullable_to_types),
        _ => {}
    }
}

fn or_null(p: &mut Value) {
    let inner = std::mem::take(p);
    *p = json!({ "anyOf": [inner, {"type": "null"}] });
}

fn prepare_schema(vendor: Vendor, s: &mut Value) {
    if vendor != Vendor::Autotask {
        nullable_to_types(s);
    }
    if vendor == Vendor::Platform {
        strip_date_time(s);
    }
}

fn prepare(vendor: Vendor, defs: &mut Value) {
    prepare_schema(vendor, defs);
    if vendor == Vendor::Autotask {
        autotask_object_is_any(defs);
    }
    let Some(defs) = defs.as_object_mut() else {
        return;
    };
    for (name, def) in defs.iter_mut() {
        let quirks: Vec<&str> = NULL_QUIRKS
            .iter()
            .filter(|(v, d, _)| *v == vendor && (*d == "*" || d == name))
            .map(|(_, _, p)| *p)
            .collect();
        if !quirks.is_empty() {
            null_props(def, &quirks);
        }
    }
}

/// Makes the named properties (`"*"`: all) nullable, at any depth of a definition (inline
/// item schemas such as `tenantBatch`'s included).
fn null_props(v: &mut Value, quirks: &[&str]) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Object(props)) = o.get_mut("properties") {
                for (prop, schema) in props.iter_mut() {
                    null_props(schema, quirks);
                    if quirks.iter().any(|q| *q == "*" || q == prop) {
                        or_null(schema);
                    }
                }
            }
            for (k, x) in o.iter_mut() {
                if k != "properties" {
                    null_props(x, quirks);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| null_props(x, quirks)),
        _ => {}
    }
}
