//! Reads of the fake ConnectWise Manage: `conditions`, `orderBy`, navigable and forward-only
//! paging with `Link` headers, `count`, and single records.

use axum::{
    http::{header, HeaderMap, HeaderValue, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};

use super::{
    errors::{bad_request, invalid, not_found},
    state::{CwState, Instance, Res},
};
use crate::{
    common::{self, QueryParams, Server},
    conditions::{self, Expr},
};

const MAX_PAGE_SIZE: usize = 1000;
const DEFAULT_PAGE_SIZE: usize = 25;

/// An integer query parameter (absent or blank = `None`).
fn int_param(q: &QueryParams, key: &str) -> Result<Option<i64>, Response> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad_request(&format!("{key} must be an integer"))),
    }
}

pub(super) fn parse_id(s: &str) -> Option<i64> {
    s.trim().parse::<i64>().ok()
}

/// `orderBy=name asc, id desc`
fn parse_order(s: &str, fields: &[String]) -> Result<Vec<(Vec<String>, bool)>, Response> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let field = words.next().unwrap_or_default();
        let desc = match words.next() {
            None => false,
            Some(w) if w.eq_ignore_ascii_case("asc") => false,
            Some(w) if w.eq_ignore_ascii_case("desc") => true,
            Some(w) => return Err(bad_request(&format!("orderBy: unexpected '{w}'"))),
        };
        let path: Vec<String> = field.split('/').map(str::to_string).collect();
        if !fields.iter().any(|f| f.eq_ignore_ascii_case(&path[0])) {
            return Err(bad_request(&format!("orderBy: unknown field '{field}'")));
        }
        out.push((path, desc));
    }
    Ok(out)
}

fn sort_key<'a>(v: &'a Value, path: &[String]) -> &'a Value {
    let mut cur = v;
    let aliased;
    let path: &[String] = if path.len() == 1 && path[0].eq_ignore_ascii_case("lastUpdated") {
        aliased = ["_info".to_string(), "lastUpdated".to_string()];
        &aliased
    } else {
        path
    };
    for seg in path {
        match conditions::get_ci(cur, seg) {
            Some(n) => cur = n,
            None => return &Value::Null,
        }
    }
    cur
}

fn cmp_json(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

impl Server<CwState> {
    /// Resolves `Res::Additions(_)` with the parent id from the path.
    pub(super) fn resolve(
        inst: &Instance,
        res: Res,
        parent: Option<&str>,
    ) -> Result<Res, Response> {
        match (res, parent) {
            (Res::Additions(_), Some(p)) => match parse_id(p) {
                Some(a) if inst.agreements.get(a).is_some() => Ok(Res::Additions(a)),
                _ => Err(not_found(Res::Agreements, p)),
            },
            (r, _) => Ok(r),
        }
    }

    pub(super) fn list(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        uri: &Uri,
        res: Res,
        parent: Option<&str>,
        count_only: bool,
    ) -> Response {
        let q = QueryParams::from_uri(uri);
        let forward_only = headers
            .get("pagination-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("forward-only"));
        let link_base = format!("{}{}", self.url, uri.path());
        self.with_instance(codebase, headers, |inst, _| {
            let res = match Self::resolve(inst, res, parent) {
                Ok(r) => r,
                Err(e) => return ListOut::Done(e),
            };
            let fields = res.fields();
            let (expr, child) = match record_filter(&q, res) {
                Ok(f) => f,
                Err(e) => return ListOut::Done(e),
            };
            let projection = match projection(&q, res) {
                Ok(p) => p,
                Err(e) => return ListOut::Done(e),
            };
            let matches = |v: &Value| {
                expr.as_ref().is_none_or(|e| e.matches(v))
                    && child.as_ref().is_none_or(|e| e.matches(v))
            };
            if count_only {
                let n = inst
                    .rows_from(res, i64::MIN)
                    .filter(|(_, v)| matches(v))
                    .count();
                return ListOut::Done(common::json_response(
                    StatusCode::OK,
                    &json!({ "count": n }),
                ));
            }
            let page_size = match int_param(&q, "pageSize") {
                Ok(Some(n)) if n >= 1 => (n as usize).min(MAX_PAGE_SIZE),
                Ok(_) => DEFAULT_PAGE_SIZE,
                Err(e) => return ListOut::Done(e),
            };
            let order = match q.get("orderBy") {
                Some(_) if forward_only => {
                    return ListOut::Done(bad_request(
                        "orderBy is not supported with forward-only pagination.",
                    ));
                }
                Some(o) => match parse_order(o, &fields) {
                    Ok(v) => v,
                    Err(e) => return ListOut::Done(e),
                },
                None => Vec::new(),
            };
            let mut links: Vec<(String, &str)> = Vec::new();
            let page: Vec<&Value> = if forward_only {
                let after = match int_param(&q, "pageId") {
                    Ok(v) => v.unwrap_or(0),
                    Err(e) => return ListOut::Done(e),
                };
                let mut it = inst.rows_from(res, after).filter(|(_, v)| matches(v));
                let page: Vec<(i64, &Value)> = it.by_ref().take(page_size).collect();
                if let (Some((last, _)), true) = (page.last(), it.next().is_some()) {
                    links.push((
                        q.link(
                            &link_base,
                            &["pageId", "page"],
                            &[("pageId", last.to_string())],
                        ),
                        "next",
                    ));
                }
                page.into_iter().map(|(_, v)| v).collect()
            } else {
                let page_no = match int_param(&q, "page") {
                    Ok(Some(n)) if n >= 1 => n as usize,
                    Ok(_) => 1,
                    Err(e) => return ListOut::Done(e),
                };
                let skip = (page_no - 1).saturating_mul(page_size);
                let (total, page) = if order.is_empty() {
                    let mut total = 0usize;
                    let mut page = Vec::with_capacity(page_size.min(1024));
                    for (_, v) in inst.rows_from(res, i64::MIN) {
                        if matches(v) {
                            if total >= skip && total < skip + page_size {
                                page.push(v);
                            }
                            total += 1;
                        }
                    }
                    (total, page)
                } else {
                    let mut all: Vec<&Value> = inst
                        .rows_from(res, i64::MIN)
                        .filter(|(_, v)| matches(v))
                        .map(|(_, v)| v)
                        .collect();
                    all.sort_by(|a, b| {
                        for (path, desc) in &order {
                            let o = cmp_json(sort_key(a, path), sort_key(b, path));
                            let o = if *desc { o.reverse() } else { o };
                            if o.is_ne() {
                                return o;
                            }
                        }
                        std::cmp::Ordering::Equal
                    });
                    let total = all.len();
                    (total, all.into_iter().skip(skip).take(page_size).collect())
                };
                let last = total.div_ceil(page_size).max(1);
                let mk = |n: usize| q.link(&link_base, &["page"], &[("page", n.to_string())]);
                if page_no > 1 {
                    links.push((mk(1), "first"));
                    links.push((mk((page_no - 1).min(last)), "prev"));
                }
                if page_no < last {
                    links.push((mk(page_no + 1), "next"));
                    links.push((mk(last), "last"));
                }
                page
            };
            let link = (!links.is_empty()).then(|| {
                links
                    .iter()
                    .map(|(u, rel)| format!("<{u}>; rel=\"{rel}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            ListOut::Page(
                page.into_iter().map(|v| project(v, &projection)).collect(),
                link,
            )
        })
    }

    pub(super) fn get_one(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        uri: &Uri,
        res: Res,
        parent: Option<&str>,
        id: &str,
    ) -> Response {
        let q = QueryParams::from_uri(uri);
        self.with_instance(codebase, headers, |inst, _| {
            let res = match Self::resolve(inst, res, parent) {
                Ok(r) => r,
                Err(e) => return e,
            };
            let projection = match projection(&q, res) {
                Ok(p) => p,
                Err(e) => return e,
            };
            match parse_id(id).and_then(|n| inst.row(res, n)) {
                Some(v) => common::json_response(StatusCode::OK, &project(v, &projection)),
                None => not_found(res, id),
            }
        })
    }
}

/// `conditions` (top-level and reference fields) and `childConditions` (collection fields,
/// e.g. `types/id = 1`, `communicationItems/value like "*@acme.test"`) of a list request.
/// A collection in `conditions`, a non-collection in `childConditions`, an unknown field or a
/// syntax error → 400 (UNCONFIRMED: the stricter reading of the vendor's split).
fn record_filter(q: &QueryParams, res: Res) -> Result<(Option<Expr>, Option<Expr>), Response> {
    let fields = res.fields();
    let collections = res.collection_fields();
    let is = |list: &[String], p: &[String]| list.iter().any(|f| f.eq_ignore_ascii_case(&p[0]));
    let parse = |param: &str, child: bool| -> Result<Option<Expr>, Response> {
        let Some(c) = q.get(param) else {
            return Ok(None);
        };
        let e = conditions::parse(c)
            .map_err(|err| invalid(res.label(), param, &format!("{param} is invalid: {err}")))?;
        for p in e.paths() {
            let problem = if !is(&fields, p) {
                Some(format!(
                    "Cannot find property '{}' on {}.",
                    p.join("/"),
                    res.label()
                ))
            } else if child && (!is(&collections, p) || p.len() < 2) {
                Some(format!(
                    "'{}' is not a field of a child collection of {}.",
                    p.join("/"),
                    res.label()
                ))
            } else if !child && is(&collections, p) {
                Some(format!(
                    "'{}' is a collection; filter it with childConditions.",
                    p.join("/")
                ))
            } else {
                None
            };
            if let Some(m) = problem {
                return Err(invalid(res.label(), param, &m));
            }
        }
        Ok(Some(e))
    };
    Ok((parse("conditions", false)?, parse("childConditions", true)?))
}

/// `fields=id,name,status/id`: the paths a partial response keeps (`None` = whole records).
/// An unknown top-level field → 400 (UNCONFIRMED).
fn projection(q: &QueryParams, res: Res) -> Result<Option<Vec<Vec<String>>>, Response> {
    let Some(f) = q.get("fields").filter(|f| !f.trim().is_empty()) else {
        return Ok(None);
    };
    let known = res.fields();
    let mut out = Vec::new();
    for part in f.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let path: Vec<String> = part.split('/').map(str::to_string).collect();
        match known.iter().find(|k| k.eq_ignore_ascii_case(&path[0])) {
            Some(k) if k != "lastUpdated" => {
                let mut path = path;
                path[0] = k.clone();
                out.push(path);
            }
            _ => {
                return Err(invalid(
                    res.label(),
                    "fields",
                    &format!("Cannot find property '{part}' on {}.", res.label()),
                ))
            }
        }
    }
    Ok(Some(out))
}

/// The partial record of `fields` (paths through arrays keep the field of each element).
fn project(v: &Value, paths: &Option<Vec<Vec<String>>>) -> Value {
    let Some(paths) = paths else {
        return v.clone();
    };
    let mut out = Value::Object(Default::default());
    for p in paths {
        merge_path(&mut out, v, p);
    }
    out
}

fn merge_path(out: &mut Value, src: &Value, path: &[String]) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    let Some(child) = conditions::get_ci(src, head) else {
        return;
    };
    let Some(obj) = out.as_object_mut() else {
        return;
    };
    if rest.is_empty() || child.is_null() {
        obj.insert(head.clone(), child.clone());
        return;
    }
    match child {
        Value::Array(items) => {
            let slot = obj
                .entry(head.clone())
                .or_insert_with(|| Value::Array(vec![json!({}); items.len()]));
            if let Value::Array(slots) = slot {
                for (s, item) in slots.iter_mut().zip(items) {
                    merge_path(s, item, rest);
                }
            }
        }
        Value::Object(_) => {
            let slot = obj.entry(head.clone()).or_insert_with(|| json!({}));
            merge_path(slot, child, rest);
        }
        other => {
            obj.insert(head.clone(), other.clone());
        }
    }
}

/// Result of a list request: an early (error/count) response, or a page to serialize once
/// the state lock is released.
enum ListOut {
    Done(Response),
    Page(Vec<Value>, Option<String>),
}

impl IntoResponse for ListOut {
    fn into_response(self) -> Response {
        match self {
            ListOut::Done(r) => r,
            ListOut::Page(page, link) => {
                let body = serde_json::to_vec(&page).expect("serializes");
                let mut resp = common::raw_json(StatusCode::OK, body);
                if let Some(v) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
                    resp.headers_mut().insert(header::LINK, v);
                }
                resp
            }
        }
    }
}
