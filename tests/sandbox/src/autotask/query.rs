//! Autotask query models: `maxRecords`, `includeFields` and `filter` parsed against an
//! entity's fields and UDFs, compiled to [`Cond`]itions, matched against record JSON, and the
//! projection of `includeFields`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{
    entities::{Entity, Ty},
    records::parse_dt,
    state::AtState,
    MAX_CONDITIONS, MAX_RECORDS,
};

pub(super) fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    get_ci_map(o, key)
}

pub(super) fn get_ci_map<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

pub(super) struct ParsedQuery {
    pub(super) max_records: usize,
    /// Canonical field names (empty = all).
    pub(super) include: Vec<&'static str>,
    /// UDF names selected by includeFields (`None` = all UDFs when any are included).
    pub(super) include_udfs: Option<Vec<String>>,
    pub(super) cond: Cond,
}

pub(super) fn parse_query(st: &AtState, e: Entity, m: &Value) -> Result<ParsedQuery, String> {
    let max_records = match get_ci(m, "maxRecords") {
        None | Some(Value::Null) => MAX_RECORDS,
        Some(v) => match v.as_i64() {
            Some(n) if (1..=MAX_RECORDS as i64).contains(&n) => n as usize,
            _ => {
                return Err(format!(
                    "MaxRecords must be between 1 and {MAX_RECORDS} (got {v})."
                ))
            }
        },
    };
    let mut include = Vec::new();
    let mut include_udfs: Option<Vec<String>> = None;
    match get_ci(m, "includeFields") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for f in a {
                let Some(name) = f.as_str() else {
                    return Err(format!("IncludeFields: '{f}' is not a field name."));
                };
                if let Some(def) = e.field(name) {
                    include.push(def.name);
                } else if e.has_udfs() && name.eq_ignore_ascii_case("userDefinedFields") {
                    include.push("userDefinedFields");
                } else if let Some(u) = st.udf_def(e, name) {
                    include.push("userDefinedFields");
                    include_udfs
                        .get_or_insert_with(Vec::new)
                        .push(u.name.clone());
                } else {
                    return Err(format!(
                        "IncludeFields: unable to find field '{name}' in the {} entity.",
                        e.name()
                    ));
                }
            }
            if include.contains(&"userDefinedFields")
                && include_udfs.is_some()
                && a.iter().any(|f| {
                    f.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case("userDefinedFields"))
                })
            {
                include_udfs = None;
            }
        }
        Some(_) => return Err("IncludeFields must be an array of field names.".into()),
    }
    let cond = match get_ci(m, "filter") {
        None | Some(Value::Null) => Cond::All(vec![]),
        Some(Value::Array(items)) => Cond::All(
            items
                .iter()
                .map(|f| compile(st, e, f))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err("Filter must be an array of filter expressions.".into()),
    };
    Ok(ParsedQuery {
        max_records,
        include,
        include_udfs,
        cond,
    })
}

pub(super) fn project(v: &Value, include: &[&'static str], udfs: &Option<Vec<String>>) -> Value {
    if include.is_empty() {
        return v.clone();
    }
    let mut out = Map::new();
    for f in include {
        if let Some(x) = v.get(*f) {
            let x = match (*f, udfs) {
                ("userDefinedFields", Some(names)) => Value::from(
                    x.as_array()
                        .map(|a| {
                            a.iter()
                                .filter(|u| {
                                    u.get("name").and_then(Value::as_str).is_some_and(|n| {
                                        names.iter().any(|w| w.eq_ignore_ascii_case(n))
                                    })
                                })
                                .cloned()
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default(),
                ),
                _ => x.clone(),
            };
            out.insert(f.to_string(), x);
        }
    }
    Value::Object(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    NotEq,
    Gt,
    Gte,
    Lt,
    Lte,
    BeginsWith,
    EndsWith,
    Contains,
    Exist,
    NotExist,
    In,
    NotIn,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "noteq" => Op::NotEq,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "beginswith" => Op::BeginsWith,
            "endswith" => Op::EndsWith,
            "contains" => Op::Contains,
            "exist" => Op::Exist,
            "notexist" => Op::NotExist,
            "in" => Op::In,
            "notin" => Op::NotIn,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub(super) enum Target {
    Field(&'static str),
    Udf(String),
}

#[derive(Debug, Clone)]
pub(super) enum Val {
    Num(f64),
    Bool(bool),
    Date(DateTime<Utc>),
    /// Lower-cased.
    Str(String),
}

#[derive(Debug, Clone)]
pub(super) enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Leaf {
        target: Target,
        op: Op,
        vals: Vec<Val>,
    },
}

pub(super) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn to_val(ty: Ty, v: &Value, field: &str) -> Result<Val, String> {
    let bad = || {
        format!(
            "Value {v} is not valid for field '{field}' ({}).",
            ty.name()
        )
    };
    Ok(match ty {
        Ty::Int | Ty::Long | Ty::Double => match v {
            Value::Number(n) => Val::Num(n.as_f64().ok_or_else(bad)?),
            Value::String(s) => Val::Num(s.trim().parse::<f64>().map_err(|_| bad())?),
            Value::Bool(b) => Val::Num(if *b { 1.0 } else { 0.0 }),
            _ => return Err(bad()),
        },
        Ty::Bool => match v {
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Bool(n.as_f64() != Some(0.0)),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Val::Bool(true),
                "false" | "0" => Val::Bool(false),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        },
        Ty::Date => match v {
            Value::String(s) => Val::Date(parse_dt(s).ok_or_else(bad)?),
            _ => return Err(bad()),
        },
        Ty::Str => Val::Str(scalar_text(v).ok_or_else(bad)?.to_lowercase()),
    })
}

fn compile(st: &AtState, e: Entity, f: &Value) -> Result<Cond, String> {
    if !f.is_object() {
        return Err(format!("Filter expression {f} must be an object."));
    }
    let op_s = get_ci(f, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Filter expression {f} has no op."))?;
    if op_s.eq_ignore_ascii_case("and") || op_s.eq_ignore_ascii_case("or") {
        let items = match get_ci(f, "items") {
            Some(Value::Array(a)) => a,
            None | Some(Value::Null) => {
                return Err(format!("Filter group '{op_s}' requires items."))
            }
            Some(_) => return Err(format!("Filter group '{op_s}': items must be an array.")),
        };
        if items.len() > MAX_CONDITIONS {
            return Err(format!(
                "A filter group cannot have more than {MAX_CONDITIONS} conditions ({} given).",
                items.len()
            ));
        }
        let sub = items
            .iter()
            .map(|i| compile(st, e, i))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if op_s.eq_ignore_ascii_case("and") {
            Cond::All(sub)
        } else {
            Cond::Any(sub)
        });
    }
    let op = Op::parse(op_s).ok_or_else(|| format!("Unknown filter op '{op_s}'."))?;
    let field = get_ci(f, "field")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Filter expression {f} has no field."))?;
    let is_udf = match get_ci(f, "udf") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let (target, ty) = if is_udf {
        let u = st.udf_def(e, field).ok_or_else(|| {
            format!(
                "Unable to find user-defined field '{field}' in the {} entity.",
                e.name()
            )
        })?;
        (Target::Udf(u.name.clone()), Ty::Str)
    } else {
        let def = e
            .field(field)
            .ok_or_else(|| format!("Unable to find field '{field}' in the {} entity.", e.name()))?;
        (Target::Field(def.name), def.ty)
    };
    let value = get_ci(f, "value");
    let vals = match op {
        Op::Exist | Op::NotExist => vec![],
        Op::In | Op::NotIn => {
            let list: Vec<&Value> = match value {
                Some(Value::Array(a)) => a.iter().collect(),
                Some(Value::Null) | None => {
                    return Err(format!("Filter '{op_s}' on '{field}' requires a value."))
                }
                Some(v) => vec![v],
            };
            if list.len() > MAX_CONDITIONS {
                return Err(format!(
                    "The '{op_s}' filter on '{field}' has {} values; at most {MAX_CONDITIONS} \
                     conditions are allowed.",
                    list.len()
                ));
            }
            list.into_iter()
                .map(|v| to_val(ty, v, field))
                .collect::<Result<Vec<_>, _>>()?
        }
        Op::BeginsWith | Op::EndsWith | Op::Contains => {
            let v = value
                .and_then(scalar_text)
                .ok_or_else(|| format!("Filter '{op_s}' on '{field}' requires a value."))?;
            vec![Val::Str(v.to_lowercase())]
        }
        _ => {
            let v = value
                .filter(|v| !v.is_null())
                .ok_or_else(|| format!("Filter '{op_s}' on '{field}' requires a value."))?;
            vec![to_val(ty, v, field)?]
        }
    };
    Ok(Cond::Leaf { target, op, vals })
}

fn record_value<'a>(rec: &'a Value, t: &Target) -> Option<&'a Value> {
    let v = match t {
        Target::Field(name) => rec.get(*name)?,
        Target::Udf(name) => rec
            .get("userDefinedFields")?
            .as_array()?
            .iter()
            .find(|u| {
                u.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })?
            .get("value")?,
    };
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        v => Some(v),
    }
}

fn compare(rec: &Value, v: &Val) -> Option<std::cmp::Ordering> {
    match v {
        Val::Num(n) => {
            let r = match rec {
                Value::Number(x) => x.as_f64()?,
                Value::String(s) => s.trim().parse::<f64>().ok()?,
                Value::Bool(b) => f64::from(u8::from(*b)),
                _ => return None,
            };
            r.partial_cmp(n)
        }
        Val::Bool(b) => rec.as_bool().map(|r| r.cmp(b)),
        Val::Date(d) => rec.as_str().and_then(parse_dt).map(|r| r.cmp(d)),
        Val::Str(s) => scalar_text(rec).map(|r| r.to_lowercase().cmp(s)),
    }
}

impl Cond {
    pub(super) fn matches(&self, rec: &Value) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Cond::All(items) => items.iter().all(|c| c.matches(rec)),
            Cond::Any(items) => items.iter().any(|c| c.matches(rec)),
            Cond::Leaf { target, op, vals } => {
                let value = record_value(rec, target);
                let Some(value) = value else {
                    return *op == Op::NotExist;
                };
                let text = || scalar_text(value).unwrap_or_default().to_lowercase();
                let pat = || match vals.first() {
                    Some(Val::Str(s)) => s.as_str(),
                    _ => "",
                };
                match op {
                    Op::Exist => true,
                    Op::NotExist => false,
                    Op::Eq => compare(value, &vals[0]) == Some(Equal),
                    Op::NotEq => compare(value, &vals[0]).is_some_and(|o| o != Equal),
                    Op::Gt => compare(value, &vals[0]) == Some(Greater),
                    Op::Gte => matches!(compare(value, &vals[0]), Some(Greater | Equal)),
                    Op::Lt => compare(value, &vals[0]) == Some(Less),
                    Op::Lte => matches!(compare(value, &vals[0]), Some(Less | Equal)),
                    Op::BeginsWith => text().starts_with(pat()),
                    Op::EndsWith => text().ends_with(pat()),
                    Op::Contains => text().contains(pat()),
                    Op::In => vals.iter().any(|v| compare(value, v) == Some(Equal)),
                    Op::NotIn => vals
                        .iter()
                        .all(|v| compare(value, v).is_some_and(|o| o != Equal)),
                }
            }
        }
    }
}
