//! The content of a `csv_v2_0` usage report: one row per (tenant, enabled offering item, usage
//! name), gzip-compressed.
//!
//! Columns as Acronis's own WHMCS usage-report parser reads csv_v2_0 (`tenant.name` and
//! `usage_name` are UNCONFIRMED additions): see [`HEADER`]. UNCONFIRMED choices:
//! * rows by `level` relative to `parameters.tenant_id` (live tenants only, parents before
//!   children): `itself` → the tenant; `accounts` → the tenant and every descendant;
//!   `all_customers` → the customers among those; `direct_partners` → its partner children;
//!   `all_partners` → its partner descendants (not itself);
//! * per tenant, its enabled live items; per item its own usage name always, the others that
//!   have history or a current value;
//! * `usage.absolute.*` = the value on the period's end; `.production` = total when the tenant's
//!   pricing mode is `production` (else 0), `.trial` = total − production; `usage.delta.*` =
//!   value on the end − value on the day before the start, split the same way;
//!   `usage.effective.*` = the absolute ones. Kind `usage_current`: the current values, delta 0;
//! * numbers: integral ones without a fraction (`5`), others as Rust prints them (`2.5`);
//! * RFC 4180: CRLF line ends, fields with `,`, `"`, CR or LF quoted (quotes doubled).

use std::io::Write;

use chrono::{Duration, NaiveDate};
use flate2::{write::GzEncoder, Compression};

use super::{report_post::ReportReq, state::PfState, usage::ukey, APPLICATION_ID};

/// The header row (without the line end).
pub(super) const HEADER: &str = "tenant.id,tenant.kind,tenant.name,application.id,name,edition,\
usage_name,infra.id,infra.owner_id,infra.backend_type,usage.absolute.total,\
usage.absolute.production,usage.absolute.trial,usage.delta.total,usage.delta.production,\
usage.delta.trial,usage.effective.total,usage.effective.production,usage.effective.trial";

fn field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The tenants a report at `level` under `root` covers.
fn tenants_of<'a>(st: &'a PfState, root: &str, level: &str) -> Vec<&'a super::state::Tenant> {
    st.order
        .values()
        .filter_map(|id| st.tenant(id))
        .filter(|t| t.deleted_at.is_none() && st.in_subtree(&t.id, root))
        .filter(|t| match level {
            "itself" => t.id == root,
            "accounts" => true,
            "all_customers" => t.kind == "customer",
            "direct_partners" => t.kind == "partner" && t.parent_id.as_deref() == Some(root),
            "all_partners" => t.kind == "partner" && t.id != root,
            _ => false,
        })
        .collect()
}

/// The CSV text of a report, computed from the usage history as it is now.
pub(super) fn build(st: &PfState, r: &ReportReq) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str("\r\n");
    for t in tenants_of(st, &r.tenant_id, &r.level) {
        let production = t.pricing_mode == "production";
        let split = |v: f64| {
            let p = if production { v } else { 0.0 };
            [v, p, v - p]
        };
        for it in st.tenant_items(t) {
            if it.status != 1 || it.deleted_at.is_some() {
                continue;
            }
            for un in st.usage_names(it, true) {
                let k = ukey(&t.id, &it.name, it.infra_id.as_deref(), &un);
                let (abs, delta) = match r.period {
                    Some((start, end)) if r.kind != "usage_current" => {
                        let abs = st.value_on(&k, end);
                        let before: NaiveDate = start - Duration::days(1);
                        (abs, abs - st.value_on(&k, before))
                    }
                    _ => (st.current(&k), 0.0),
                };
                if r.hide_zero_usage && abs == 0.0 {
                    continue;
                }
                let infra = it.infra_id.as_deref().and_then(|i| st.infras.get(i));
                let mut row: Vec<String> = vec![
                    field(&t.id),
                    field(&t.kind),
                    field(&t.name),
                    field(APPLICATION_ID),
                    field(&it.name),
                    "standard".into(),
                    field(&un),
                    infra.map(|i| field(&i.id)).unwrap_or_default(),
                    infra.map(|_| field(&st.root_id)).unwrap_or_default(),
                    infra.map(|i| field(i.backend_type)).unwrap_or_default(),
                ];
                for v in split(abs).into_iter().chain(split(delta)).chain(split(abs)) {
                    row.push(num(v));
                }
                out.push_str(&row.join(","));
                out.push_str("\r\n");
            }
        }
    }
    out
}

/// gzip of `text`.
pub(super) fn gzip(text: &str) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(text.as_bytes()).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

#[cfg(test)]
mod tests {
    use super::{field, num};

    #[test]
    fn csv_fields_and_numbers() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("plain"), "plain");
        assert_eq!(num(5.0), "5");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(-3.0), "-3");
    }
}
