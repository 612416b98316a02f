//! Writes of the fake Autotask a PSA user makes besides companies, contracts and services:
//! contacts through their company (`POST`/`PATCH /Companies/{parentId}/Contacts`, as in the
//! Swagger; root `Contacts` is read-only) and tickets (`POST`/`PATCH /Tickets`).

use super::{
    records::{AtContact, AtTicket},
    state::AtState,
    writes::{check_pick, from_json, save_root, RootWrite},
};

/// A contact of `company_id` (the parent in the path). Required: `firstName`, `lastName`,
/// `isActive` (1/0); a `companyID` in the body must be the parent. `primaryContact: true`
/// clears it on the company's other contacts (UNCONFIRMED: one primary contact per company).
pub(super) fn write_contact(
    st: &mut AtState,
    company_id: i64,
    w: &RootWrite<'_>,
) -> Result<i64, String> {
    if st.companies.get(company_id).is_none() {
        return Err(format!("Company with id {company_id} was not found."));
    }
    if w.update {
        let id = w
            .body
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("id"))
            .and_then(|(_, v)| v.as_i64());
        if id.and_then(|i| st.contacts.get(i)).map(|c| c.company_id) != Some(company_id) {
            return Err(format!(
                "Contact with id {} was not found on company {company_id}.",
                id.map(|i| i.to_string()).unwrap_or_default()
            ));
        }
    }
    let fresh = AtContact {
        company_id,
        is_active: 1,
        user_defined_fields: st.blank_udfs(w.e),
        ..Default::default()
    };
    let id = save_root(
        st,
        w,
        |st| &mut st.contacts,
        fresh,
        &["firstName", "lastName"],
        |_, json, _| {
            let rec: AtContact = from_json(json)?;
            if rec.company_id != company_id {
                return Err(format!(
                    "companyID {} does not match the parent company {company_id}.",
                    rec.company_id
                ));
            }
            if !matches!(rec.is_active, 0 | 1) {
                return Err("isActive must be 0 or 1.".into());
            }
            Ok(rec)
        },
    )?;
    if st.contacts.get(id).is_some_and(|c| c.primary_contact) {
        st.contacts.modify_where(
            |c| c.company_id == company_id && c.id != id && c.primary_contact,
            |c| c.primary_contact = false,
        );
    }
    Ok(id)
}

/// A ticket. Required (UNCONFIRMED, the swagger names none; the stricter reading of what
/// clients send): `title`, `companyID`, `status`, `priority`; `contactID` must be a contact of
/// the company, `contractID` a contract of it; picklists must hold the values.
pub(super) fn write_ticket(st: &mut AtState, w: &RootWrite<'_>) -> Result<i64, String> {
    let number = format!(
        "T{}.{:04}",
        w.now.format("%Y%m%d"),
        st.tickets.records().count() + 1
    );
    let fresh = AtTicket {
        ticket_number: number,
        create_date: w.now,
        ..Default::default()
    };
    save_root(
        st,
        w,
        |st| &mut st.tickets,
        fresh,
        &["title", "companyID", "status", "priority"],
        |st, json, _| {
            let rec: AtTicket = from_json(json)?;
            if st.companies.get(rec.company_id).is_none() {
                return Err(format!(
                    "companyID: Company {} does not exist.",
                    rec.company_id
                ));
            }
            if let Some(c) = rec.contact_id {
                if st.contacts.get(c).map(|c| c.company_id) != Some(rec.company_id) {
                    return Err(format!("contactID: {c} is not a contact of the company."));
                }
            }
            if let Some(k) = rec.contract_id {
                if st.contracts.get(k).map(|k| k.company_id) != Some(rec.company_id) {
                    return Err(format!("contractID: {k} is not a contract of the company."));
                }
            }
            check_pick(st, w.e, "status", rec.status)?;
            check_pick(st, w.e, "priority", rec.priority)?;
            if let Some(q) = rec.queue_id {
                check_pick(st, w.e, "queueID", q)?;
            }
            Ok(rec)
        },
    )
}
