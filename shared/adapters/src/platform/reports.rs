//! A closed period's usage from the platform's usage report (R-USE-5): the same period read
//! again gives the same numbers, which current usage cannot.
//!
//! 1. `POST /api/2/reports`: a one-time `usage_summary` of the partner's customers
//!    (`level: all_customers`, sub-partners' customers included) over the period, saved as
//!    `csv_v2_0`. The spec's 400 ("not ready … from 1 to 6 am") is [`PeriodUsage::NotReady`];
//!    its 500 ("should be available after 6 am") is transient.
//! 2. `GET /reports/{id}/stored` until the stored report is `saved` (the endpoint's backoff,
//!    within the retry budget and the invocation's deadline), `failed` is an error.
//! 3. `GET /reports/{id}/stored/{stored}`: the CSV, gzip-compressed (Acronis's own WHMCS module
//!    reads it with `gzopen`); a body without the gzip magic is read as plain CSV.
//! 4. `DELETE /reports/{id}?version=`: the report is removed whatever happened (best effort;
//!    a report whose POST answer was lost is not known and stays).
//!
//! UNCONFIRMED, coded defensively:
//! - `period.end` is inclusive (the spec's example: 05-01 … 05-07, generated 05-08): the
//!   product's `[start, end)` is sent as `start … end − 1 day`.
//! - The figure of a row is `usage.absolute.total` (R-USE-1: absolute values; the column set is
//!   that of Acronis's WHMCS parser for csv_v2_0). Columns are found by header name; others
//!   are ignored. A `usage_name` column, when present, gives the measure as in current usage;
//!   without it the offering item's name does.
//! - A 400 whose message does not say "not ready" is an ordinary rejection (loud, not a
//!   period left waiting in silence).

use super::usage::measure_of;
use super::{PlatformApi, PlatformErrors, LOG_SYSTEM};
use crate::http::{ErrorDialect, Idempotency};
use chrono::NaiveDate;
use domain::model::ItemKey;
use domain::ports::{PeriodUsage, TenantUsage, UsageFigure};
use domain::{PortError, PortResult, System};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::io::Read;

/// The stored report format read (the one whose columns are known).
const FORMAT: &str = "csv_v2_0";
/// Largest uncompressed report read (a 10k-customer report is tens of MB).
const MAX_REPORT_BYTES: u64 = 1 << 30;

#[derive(Deserialize)]
struct WireReport {
    id: String,
    version: i64,
}

#[derive(Deserialize)]
struct WireStoredList {
    #[serde(default)]
    items: Vec<WireStored>,
}

#[derive(Deserialize)]
struct WireStored {
    #[serde(default)]
    id: Option<String>,
    report_format: String,
    status: String,
}

/// The columns of a report row the product reads.
#[derive(Deserialize)]
struct ReportRow {
    #[serde(rename = "tenant.id")]
    tenant_id: String,
    name: String,
    #[serde(default)]
    usage_name: Option<String>,
    #[serde(rename = "infra.id", default)]
    infra_id: Option<String>,
    #[serde(rename = "usage.absolute.total", default)]
    absolute_total: Option<f64>,
}

fn rejected(message: String) -> PortError {
    PortError::Rejected {
        system: System::Platform,
        message,
    }
}

/// Whether the platform's refusal of a report says the usage history is not ready yet.
fn not_ready(e: &PortError) -> bool {
    matches!(e, PortError::Rejected { message, .. }
        if message.to_ascii_lowercase().contains("not ready"))
}

/// A reader that fails, rather than ends, past `left` bytes: a report cut short would read as
/// tenants without usage.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::other(format!("the report is larger than {} bytes", self.limit))
        })?;
        Ok(n)
    }
}

/// The figures of the report's rows for the asked tenants, a tenant at a time.
pub(super) fn parse_report(body: &[u8], tenants: &HashSet<&str>) -> PortResult<Vec<TenantUsage>> {
    parse_report_within(body, tenants, MAX_REPORT_BYTES)
}

fn parse_report_within(
    body: &[u8],
    tenants: &HashSet<&str>,
    limit: u64,
) -> PortResult<Vec<TenantUsage>> {
    let inner: Box<dyn Read + '_> = if body.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(body))
    } else {
        Box::new(body)
    };
    let reader = Capped {
        inner,
        left: limit,
        limit,
    };
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    csv.headers().map_err(|e| {
        rejected(format!(
            "platform usage report: its header cannot be read: {e}"
        ))
    })?;
    let mut by_tenant: BTreeMap<String, Vec<UsageFigure>> = BTreeMap::new();
    for (n, row) in csv.deserialize::<ReportRow>().enumerate() {
        let row = row.map_err(|e| {
            rejected(format!(
                "platform usage report: row {} cannot be read: {e}",
                n + 2
            ))
        })?;
        if !tenants.contains(row.tenant_id.as_str()) {
            continue;
        }
        let Some(value) = row.absolute_total else {
            continue;
        };
        let usage_name = row.usage_name.filter(|u| !u.is_empty());
        let infra = row.infra_id.filter(|i| !i.is_empty());
        by_tenant
            .entry(row.tenant_id)
            .or_default()
            .push(UsageFigure {
                measure: measure_of(usage_name.as_deref().unwrap_or(&row.name)),
                item: ItemKey::new(row.name, infra.as_deref()),
                value,
            });
    }
    Ok(by_tenant
        .into_iter()
        .map(|(tenant_id, figures)| TenantUsage { tenant_id, figures })
        .collect())
}

impl PlatformApi {
    /// The usage of `tenant_ids` over `[start, end)` from a one-time usage report.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, %start, %end)
    )]
    pub(super) async fn report_usage(
        &self,
        tenant_ids: &[String],
        start: NaiveDate,
        end: NaiveDate,
    ) -> PortResult<PeriodUsage> {
        let last = end
            .pred_opt()
            .filter(|l| *l >= start)
            .ok_or_else(|| rejected(format!("usage period {start} … {end} holds no whole day")))?;
        let body = json!({
            "recipients": [],
            "result_action": "save",
            "schedule": {"type": "once"},
            "parameters": {
                "kind": "usage_summary",
                "tenant_id": self.partner_tenant,
                "level": "all_customers",
                "period": {"start": start.to_string(), "end": last.to_string()},
                "formats": [FORMAT],
                "hide_zero_usage": false,
            },
        });
        let created = match self
            .call(
                Method::POST,
                "api/2/reports",
                Some(&body),
                Idempotency::Unsafe,
            )
            .await
        {
            Ok((_, v)) => v,
            Err(e) if not_ready(&e) => return Ok(PeriodUsage::NotReady(e.to_string())),
            Err(e) => return Err(e),
        };
        let report: WireReport = serde_json::from_value(created)
            .map_err(|e| PlatformErrors.unexpected_body("POST /api/2/reports", e))?;
        let read = self.read_report(&report.id, tenant_ids).await;
        if let Err(e) = self.remove_report(&report).await {
            tracing::warn!(report = %report.id, error = %e, "usage report left on the platform");
        }
        read.map(PeriodUsage::Ready)
    }

    /// Deletes a report at its version; a version that moved since (the platform's versions
    /// grow; whether saving the report moves it is UNCONFIRMED) is read again once.
    async fn remove_report(&self, report: &WireReport) -> PortResult<()> {
        let delete = |version: i64| {
            let path = format!("api/2/reports/{}?version={version}", report.id);
            async move {
                self.call_bytes(Method::DELETE, &path, None, Idempotency::Safe)
                    .await
                    .map(drop)
            }
        };
        match delete(report.version).await {
            Err(PortError::Conflict { .. }) => {
                let now: WireReport = serde_json::from_value(
                    self.get(&format!("api/2/reports/{}", report.id)).await?,
                )
                .map_err(|e| PlatformErrors.unexpected_body("GET /api/2/reports/…", e))?;
                delete(now.version).await
            }
            other => other,
        }
    }

    /// Waits for the report's stored CSV, downloads and reads it.
    async fn read_report(&self, id: &str, tenant_ids: &[String]) -> PortResult<Vec<TenantUsage>> {
        let list = format!("api/2/reports/{id}/stored");
        let mut poll = self.ep.poll();
        let stored = loop {
            let (_, bytes) = self
                .call_bytes(Method::GET, &list, None, Idempotency::Safe)
                .await?;
            let page: WireStoredList = serde_json::from_slice(&bytes)
                .map_err(|e| PlatformErrors.unexpected_body("GET /api/2/reports/…/stored", e))?;
            let Some(s) = page.items.into_iter().find(|s| s.report_format == FORMAT) else {
                return Err(rejected(format!(
                    "platform usage report {id}: no stored {FORMAT} report"
                )));
            };
            match (s.status.as_str(), s.id) {
                ("saved", Some(sid)) => break sid,
                ("failed", _) => {
                    return Err(PortError::Transient {
                        system: System::Platform,
                        message: format!("platform usage report {id}: its generation failed"),
                    })
                }
                (status, _) => {
                    poll.pause(format!("platform usage report {id} is {status}"), None)
                        .await?
                }
            }
        };
        let (_, body) = self
            .call_bytes(
                Method::GET,
                &format!("{list}/{stored}"),
                None,
                Idempotency::Safe,
            )
            .await?;
        let wanted: HashSet<&str> = tenant_ids.iter().map(String::as_str).collect();
        parse_report(&body, &wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ports::Measure;
    use std::io::Write;

    const CSV: &str = "tenant.id,tenant.kind,name,usage_name,infra.id,usage.absolute.total,usage.effective.total\n\
        t-1,customer,workstations,workstations,,5,9\n\
        t-1,customer,storage,storage_class1,i-1,10737418240,1\n\
        t-2,customer,servers,servers,,3,3\n\
        t-3,customer,servers,servers,,7,7\n";

    #[test]
    fn r_use_5_report_rows_give_absolute_figures_of_the_asked_tenants_gzip_or_not() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(CSV.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let asked: HashSet<&str> = ["t-1", "t-2"].into_iter().collect();
        for body in [gz.as_slice(), CSV.as_bytes()] {
            let out = parse_report(body, &asked).unwrap();
            assert_eq!(out.len(), 2, "t-3 was not asked for");
            assert_eq!(out[0].tenant_id, "t-1");
            assert_eq!(out[0].figures[0].value, 5.0, "absolute, not effective");
            let storage = &out[0].figures[1];
            assert_eq!(storage.measure, Measure::Class1);
            assert_eq!(storage.item, ItemKey::new("storage", Some("i-1")));
            assert_eq!(out[1].figures[0].value, 3.0);
        }
    }

    #[test]
    fn r_use_5_a_report_larger_than_the_limit_is_refused_not_cut_short() {
        let asked: HashSet<&str> = ["t-1", "t-2"].into_iter().collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(CSV.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        // The limit ends the body after t-1's rows: t-2 would silently read as no usage.
        let cut = CSV.find("t-2").unwrap() as u64;
        for body in [gz.as_slice(), CSV.as_bytes()] {
            let e = parse_report_within(body, &asked, cut).unwrap_err();
            assert!(e.to_string().contains("larger than"), "{e}");
        }
        // Past the first buffers, too.
        let mut big = String::from("tenant.id,name,usage.absolute.total\n");
        for n in 0..5000 {
            big.push_str(&format!("t-1,item{n},1\n"));
        }
        let e = parse_report_within(big.as_bytes(), &asked, big.len() as u64 - 10).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        assert!(parse_report_within(big.as_bytes(), &asked, big.len() as u64).is_ok());
    }

    #[test]
    fn a_report_without_a_needed_column_or_with_a_bad_number_is_refused_with_its_row() {
        let asked: HashSet<&str> = ["t-1"].into_iter().collect();
        let e = parse_report(b"tenant.id,usage.absolute.total\nt-1,5\n", &asked).unwrap_err();
        assert!(e.to_string().contains("row 2"), "{e}");
        let e = parse_report(
            b"tenant.id,name,usage.absolute.total\nt-1,servers,lots\n",
            &asked,
        )
        .unwrap_err();
        assert!(e.to_string().contains("row 2"), "{e}");
    }
}
