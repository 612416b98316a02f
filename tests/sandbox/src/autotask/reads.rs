//! Reads of the fake Autotask: `entityInformation` (info, fields, UDFs), single records, child
//! lists, and queries (`POST …/query`, `GET …/query?search=`, `…/count`) with `afterId` paging.

use std::ops::Bound;

use axum::{
    http::{HeaderMap, StatusCode, Uri},
    response::Response,
};
use serde_json::{json, Value};

use super::{
    entities::Entity,
    errors::{at_error, err500},
    query::{get_ci, parse_query, project, Cond, Op, Target, Val},
    state::AtState,
    MAX_RECORDS,
};
use crate::common::{QueryParams, Server};

impl Server<AtState> {
    pub(super) fn entity_info(&self, e: Entity, h: &HeaderMap) -> Response {
        self.api(h, true, |_, _| {
            Ok(json!({"info": {
                "name": e.singular(),
                "canCreate": e.can_create(),
                "canDelete": false,
                "canQuery": e.can_query(),
                "canUpdate": e.can_update(),
                "userAccessForCreate": if e.can_create() { "All" } else { "None" },
                "userAccessForDelete": "None",
                "userAccessForQuery": if e.can_query() { "All" } else { "None" },
                "userAccessForUpdate": if e.can_update() { "All" } else { "None" },
                "hasUserDefinedFields": e.has_udfs(),
                "supportsWebhookCallouts": matches!(e, Entity::Companies | Entity::Contacts),
            }}))
        })
    }

    pub(super) fn field_info(&self, e: Entity, h: &HeaderMap) -> Response {
        self.api(h, true, |st, _| {
            let fields: Vec<Value> = e
                .fields()
                .iter()
                .map(|f| {
                    let picklist = if f.picklist() {
                        st.picklist(e, f.name)
                            .map(|l| {
                                l.iter()
                                    .enumerate()
                                    .map(|(i, p)| {
                                        json!({
                                            "value": p.value.to_string(),
                                            "label": p.label,
                                            "isDefaultValue": false,
                                            "sortOrder": i,
                                            "parentValue": "",
                                            "isActive": p.is_active,
                                            "isSystem": true,
                                        })
                                    })
                                    .collect::<Vec<_>>()
                            })
                            .map(Value::from)
                            .unwrap_or(Value::Null)
                    } else {
                        Value::Null
                    };
                    json!({
                        "name": f.name,
                        "dataType": f.ty.name(),
                        "length": f.length,
                        "isRequired": f.required(),
                        "isReadOnly": f.read_only(),
                        "isQueryable": true,
                        "isReference": f.reference.is_some(),
                        "referenceEntityType": f.reference.unwrap_or(""),
                        "isPickList": f.picklist(),
                        "picklistValues": picklist,
                        "picklistParentValueField": "",
                        "isSupportedWebhookField": false,
                    })
                })
                .collect();
            Ok(json!({ "fields": fields }))
        })
    }

    pub(super) fn udf_info(&self, e: Entity, h: &HeaderMap) -> Response {
        self.api(h, true, |st, _| {
            let fields: Vec<Value> = st
                .udf_defs(e)
                .iter()
                .map(|u| {
                    let picklist = u.picklist.as_ref().map(|l| {
                        l.iter()
                            .enumerate()
                            .map(|(i, (v, label))| {
                                json!({
                                    "value": v, "label": label, "isDefaultValue": false,
                                    "sortOrder": i, "parentValue": "", "isActive": true,
                                    "isSystem": false,
                                })
                            })
                            .collect::<Vec<_>>()
                    });
                    json!({
                        "name": u.name,
                        "label": u.name,
                        "type": "string",
                        "length": 8000,
                        "description": "",
                        "isRequired": false,
                        "isReadOnly": false,
                        "isQueryable": true,
                        "isReference": false,
                        "referenceEntityType": "",
                        "isPickList": picklist.is_some(),
                        "picklistValues": picklist,
                        "picklistParentValueField": "",
                        "defaultValue": "",
                        "isSupportedWebhookField": false,
                    })
                })
                .collect();
            Ok(json!({ "fields": fields }))
        })
    }

    pub(super) fn get_one(
        &self,
        e: Entity,
        scope: Option<(&'static str, &str)>,
        h: &HeaderMap,
        id: &str,
    ) -> Response {
        self.api(h, true, |st, _| {
            let not_found = || {
                at_error(
                    StatusCode::NOT_FOUND,
                    &format!("{} with id {} was not found.", e.singular(), id.trim()),
                )
            };
            let n = id.trim().parse::<i64>().map_err(|_| not_found())?;
            // A well-formed id that names no record answers 200 `{"item": null}` (the spec lists
            // 200/401/403 only; the public clients read a null item as "not found").
            let Some(v) = st.rows(e).json(n) else {
                return Ok(json!({ "item": null }));
            };
            if let Some((field, parent)) = scope {
                if v.get(field).and_then(Value::as_i64) != parent.trim().parse::<i64>().ok() {
                    return Ok(json!({ "item": null }));
                }
            }
            Ok(json!({ "item": v }))
        })
    }

    pub(super) fn child_list(
        &self,
        e: Entity,
        scope_field: &'static str,
        parent: &str,
        h: &HeaderMap,
        uri: &Uri,
    ) -> Response {
        let Ok(parent_id) = parent.trim().parse::<i64>() else {
            return at_error(
                StatusCode::NOT_FOUND,
                &format!("Parent with id {parent} was not found."),
            );
        };
        self.run_query(e, Some((scope_field, parent_id)), h, uri, None, false)
    }

    pub(super) fn query(
        &self,
        e: Entity,
        scope: Option<(&'static str, i64)>,
        h: &HeaderMap,
        uri: &Uri,
        body: &[u8],
        count: bool,
    ) -> Response {
        let q = QueryParams::from_uri(uri);
        let model: Value = if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(body) {
                Ok(v @ Value::Object(_)) => v,
                Ok(_) | Err(_) => {
                    return err500("The request body must be a JSON query object.");
                }
            }
        } else if let Some(search) = q.get("search") {
            match serde_json::from_str::<Value>(search) {
                Ok(v @ Value::Object(_)) => v,
                _ => return err500("The search parameter must be a JSON query object."),
            }
        } else {
            return err500("A query (request body or search parameter) is required.");
        };
        self.run_query(e, scope, h, uri, Some(model), count)
    }

    fn run_query(
        &self,
        e: Entity,
        scope: Option<(&'static str, i64)>,
        h: &HeaderMap,
        uri: &Uri,
        model: Option<Value>,
        count: bool,
    ) -> Response {
        let q = QueryParams::from_uri(uri);
        let after: Option<i64> = match q.get("paging") {
            None => None,
            Some(p) => match serde_json::from_str::<Value>(p)
                .ok()
                .and_then(|v| get_ci(&v, "afterId").and_then(Value::as_i64))
            {
                Some(a) => Some(a),
                None => return err500("The paging parameter is invalid."),
            },
        };
        let link_base = format!("{}{}", self.url, uri.path());
        self.api(h, true, |st, _| {
            let model_v = model.clone().unwrap_or_else(|| json!({}));
            let parsed = parse_query(st, e, &model_v).map_err(|m| err500(&m))?;
            let mut cond = parsed.cond;
            if let Some((field, id)) = scope {
                let def = e.field(field).expect("scope field");
                cond = Cond::All(vec![
                    Cond::Leaf {
                        target: Target::Field(def.name),
                        op: Op::Eq,
                        vals: vec![Val::Num(id as f64)],
                    },
                    cond,
                ]);
            }
            if count {
                let n = st
                    .rows(e)
                    .json_range((Bound::Unbounded, Bound::Unbounded))
                    .filter(|(_, v)| cond.matches(v))
                    .count();
                return Ok(json!({ "queryCount": n }));
            }
            let page_size = parsed.max_records;
            let lower = match after {
                Some(a) => Bound::Excluded(a),
                None => Bound::Unbounded,
            };
            let mut it = st
                .rows(e)
                .json_range((lower, Bound::Unbounded))
                .filter(|(_, v)| cond.matches(v));
            let page: Vec<(i64, &Value)> = it.by_ref().take(page_size).collect();
            let more = it.next().is_some();
            if more
                && !parsed.include.is_empty()
                && !parsed.include.contains(&"id")
                && page.len() + 1 + it.count() > MAX_RECORDS
            {
                return Err(err500(
                    "IncludeFields must include id when the query returns more than 500 records.",
                ));
            }
            let search = model.as_ref().map(|m| m.to_string());
            let link = |after: Option<i64>| {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                if let Some(s) = &search {
                    ser.append_pair("search", s);
                }
                if let Some(a) = after {
                    ser.append_pair("paging", &json!({ "afterId": a }).to_string());
                }
                let qs = ser.finish();
                if qs.is_empty() {
                    link_base.clone()
                } else {
                    format!("{link_base}?{qs}")
                }
            };
            let next = match (more, page.last()) {
                (true, Some((last, _))) => Value::from(link(Some(*last))),
                _ => Value::Null,
            };
            let prev = match after {
                None => Value::Null,
                Some(a) => {
                    // The previous page: the `page_size` matches with id <= a; it starts
                    // after the match before those (or at the beginning).
                    let mut back = st
                        .rows(e)
                        .json_range((Bound::Unbounded, Bound::Included(a)))
                        .rev()
                        .filter(|(_, v)| cond.matches(v))
                        .map(|(id, _)| id)
                        .skip(page_size);
                    Value::from(link(back.next()))
                }
            };
            let items: Vec<Value> = page
                .iter()
                .map(|(_, v)| project(v, &parsed.include, &parsed.include_udfs))
                .collect();
            Ok(json!({
                "items": items,
                "pageDetails": {
                    "count": items.len(),
                    "requestCount": page_size,
                    "prevPageUrl": prev,
                    "nextPageUrl": next,
                },
            }))
        })
    }
}
