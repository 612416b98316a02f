//! Writes, each sent once ([`super::transport`]): services, contract services and unit
//! adjustments, and the [`ContractWriter`] port (R-TWO, R-USE).

use super::wire::{WireCreated, WireItem, WireService};
use super::{at_date, numeric_id, rejected, Autotask, LOG_SYSTEM, VENDOR};
use async_trait::async_trait;
use domain::model::ProductRef;
use domain::ports::ContractWriter;
use domain::{PortError, PortResult, System};
use reqwest::Method;
use serde::de::IgnoredAny;
use serde_json::{json, Value};

#[async_trait]
impl domain::ports::LineQuantities for Autotask {
    /// R-USE-1: the contract service's units through an adjustment of the difference — the
    /// same write as two-way sync's ([`ContractWriter::set_line_quantity`]): the units are read
    /// first, so a retry after a lost answer adjusts nothing twice.
    async fn set_quantity(
        &self,
        agreement_id: &str,
        line_id: &str,
        from: f64,
        quantity: f64,
    ) -> PortResult<()> {
        self.set_line_quantity(agreement_id, line_id, Some(from), quantity)
            .await
    }
}

#[async_trait]
impl ContractWriter for Autotask {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM)
    )]
    async fn allocation_codes(&self) -> PortResult<Vec<ProductRef>> {
        self.active_names("BillingCodes").await
    }

    /// `POST Services` with the two-way defaults: allocation code (`billingCodeID`) and period
    /// type (picklist value by its label).
    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, product = %name)
    )]
    async fn create_product(
        &self,
        name: &str,
        defaults: &domain::model::TwoWaySettings,
    ) -> PortResult<ProductRef> {
        let period = self
            .picklist_value("Services", "periodType", defaults.period_type.label())
            .await?;
        let mut body = json!({
            "name": name.trim(),
            "periodType": period.parse::<i64>().map(Value::from).unwrap_or(Value::from(period)),
            "unitPrice": 0.0,
            "isActive": true,
        });
        if let Some(code) = &defaults.allocation_code {
            body["billingCodeID"] = json!(numeric_id("allocation code", &code.id)?);
        }
        let api = self.api().await?;
        let v = self
            .write(Method::POST, api.ep.url("Services")?, &body)
            .await?;
        Ok(ProductRef {
            id: item_id(v, "Services")?,
            identifier: name.trim().to_owned(),
        })
    }

    /// `POST Contracts/{id}/Services` with the service's own unit price (units start at 0).
    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(
            partner = %self.partner,
            system = LOG_SYSTEM,
            agreement = %agreement_id,
            product = %product_id,
        )
    )]
    async fn add_line(&self, agreement_id: &str, product_id: &str) -> PortResult<String> {
        let contract = numeric_id("contract", agreement_id)?;
        let service = numeric_id("service", product_id)?;
        let api = self.api().await?;
        let v: WireItem<WireService> = self
            .call(
                Method::GET,
                api.ep.url(&format!("Services/{service}"))?,
                None,
            )
            .await?;
        let Some(item) = v.item else {
            return Err(PortError::NotFound {
                system: System::Psa,
                message: format!("{VENDOR} service {service} does not exist"),
            });
        };
        let body = json!({
            "contractID": contract,
            "serviceID": service,
            "unitPrice": item.unit_price.unwrap_or(0.0),
        });
        let url = api.ep.url(&format!("Contracts/{contract}/Services"))?;
        let v = self.write(Method::POST, url, &body).await?;
        item_id(v, "Contracts/Services")
    }

    /// Reads the line's units for today and posts one `ContractServiceAdjustment` for the
    /// difference (none when equal): repeating it never doubles a change.
    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(
            partner = %self.partner,
            system = LOG_SYSTEM,
            agreement = %agreement_id,
            line = %line_id,
            quantity = quantity,
        )
    )]
    async fn set_line_quantity(
        &self,
        agreement_id: &str,
        line_id: &str,
        from: Option<f64>,
        quantity: f64,
    ) -> PortResult<()> {
        let contract = numeric_id("contract", agreement_id)?;
        let lines = self
            .lines_of(&[contract.to_string()])
            .await?
            .remove(&contract.to_string())
            .unwrap_or_default();
        let Some(line) = lines.iter().find(|l| l.id == line_id.trim()) else {
            return Err(PortError::NotFound {
                system: System::Psa,
                message: format!("{VENDOR} contract {contract} has no contract service {line_id}"),
            });
        };
        let change = (quantity - line.quantity).round();
        if change == 0.0 {
            return Ok(());
        }
        if from.is_some_and(|f| (line.quantity - f).abs() > 1e-9) {
            return Err(PortError::Conflict {
                system: System::Psa,
                message: format!(
                    "{VENDOR} contract service {line_id} of contract {contract} holds {} units, \
                     not the {} this run read: changed in the PSA meanwhile",
                    line.quantity,
                    from.unwrap_or_default()
                ),
            });
        }
        let body = json!({
            "contractID": contract,
            "contractServiceID": numeric_id("contract service", line_id)?,
            "serviceID": numeric_id("service", &line.product_id)?,
            "unitChange": change as i64,
            "effectiveDate": at_date((self.cfg.today)()),
        });
        let api = self.api().await?;
        let url = api
            .ep
            .url(&format!("Contracts/{contract}/ServiceAdjustments"))?;
        let _: IgnoredAny = self.write(Method::POST, url, &body).await?;
        Ok(())
    }
}

/// The `itemId` of a create answer.
fn item_id(v: WireCreated, what: &str) -> PortResult<String> {
    v.item_id
        .ok_or_else(|| rejected(format!("{VENDOR} {what}: the answer has no itemId")))
}
