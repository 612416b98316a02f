//! The Autotask entities the fake serves and their field metadata (types, read-only, required,
//! picklist, reference), as `entityInformation/fields` reports them and writes check them.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Entity {
    Companies,
    Contacts,
    Contracts,
    ContractServices,
    ContractServiceUnits,
    ContractServiceAdjustments,
    Services,
    BillingCodes,
    Tickets,
}

pub(super) const ALL_ENTITIES: [Entity; 9] = [
    Entity::Companies,
    Entity::Contacts,
    Entity::Contracts,
    Entity::ContractServices,
    Entity::ContractServiceUnits,
    Entity::ContractServiceAdjustments,
    Entity::Services,
    Entity::BillingCodes,
    Entity::Tickets,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    Int,
    Long,
    Str,
    Bool,
    Date,
    Double,
}

impl Ty {
    pub(super) fn name(self) -> &'static str {
        match self {
            Ty::Int => "integer",
            Ty::Long => "long",
            Ty::Str => "string",
            Ty::Bool => "boolean",
            Ty::Date => "datetime",
            Ty::Double => "double",
        }
    }
}

const RO: u8 = 1;
const REQ: u8 = 2;
const PICK: u8 = 4;

pub(super) struct FieldDef {
    pub(super) name: &'static str,
    pub(super) ty: Ty,
    pub(super) flags: u8,
    pub(super) reference: Option<&'static str>,
    pub(super) length: u32,
}

impl FieldDef {
    pub(super) fn read_only(&self) -> bool {
        self.flags & RO != 0
    }
    pub(super) fn required(&self) -> bool {
        self.flags & REQ != 0
    }
    pub(super) fn picklist(&self) -> bool {
        self.flags & PICK != 0
    }
}

const fn fd(name: &'static str, ty: Ty, flags: u8) -> FieldDef {
    FieldDef {
        name,
        ty,
        flags,
        reference: None,
        length: if matches!(ty, Ty::Str) { 100 } else { 0 },
    }
}

const fn fr(name: &'static str, flags: u8, reference: &'static str) -> FieldDef {
    FieldDef {
        name,
        ty: Ty::Int,
        flags,
        reference: Some(reference),
        length: 0,
    }
}

pub(super) const COMPANY_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fd("companyName", Ty::Str, REQ),
    fd("companyNumber", Ty::Str, 0),
    fd("companyType", Ty::Int, REQ | PICK),
    fd("isActive", Ty::Bool, 0),
    fr("parentCompanyID", 0, "Company"),
    fr("ownerResourceID", 0, "Resource"),
    fd("phone", Ty::Str, 0),
    fd("createDate", Ty::Date, RO),
    fd("lastTrackedModifiedDateTime", Ty::Date, RO),
];

const CONTACT_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fr("companyID", REQ, "Company"),
    fd("firstName", Ty::Str, REQ),
    fd("lastName", Ty::Str, REQ),
    fd("emailAddress", Ty::Str, 0),
    fd("isActive", Ty::Int, REQ),
    fd("primaryContact", Ty::Bool, 0),
    fd("lastModifiedDate", Ty::Date, RO),
];

const CONTRACT_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fr("companyID", REQ, "Company"),
    fd("contractName", Ty::Str, REQ),
    fd("contractNumber", Ty::Str, 0),
    fd("contractType", Ty::Int, REQ | PICK),
    fd("contractCategory", Ty::Int, PICK),
    fd("contractPeriodType", Ty::Int, PICK),
    fd("status", Ty::Int, REQ | PICK),
    fd("startDate", Ty::Date, REQ),
    fd("endDate", Ty::Date, REQ),
    fd("isDefaultContract", Ty::Bool, 0),
    fd("description", Ty::Str, 0),
    fd("lastModifiedDateTime", Ty::Date, RO),
];

const CONTRACT_SERVICE_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fr("contractID", REQ, "Contract"),
    fr("serviceID", REQ, "Service"),
    fd("unitPrice", Ty::Double, 0),
    fd("unitCost", Ty::Double, 0),
    fd("invoiceDescription", Ty::Str, 0),
    fd("internalDescription", Ty::Str, 0),
];

const CONTRACT_SERVICE_UNIT_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fr("contractID", RO, "Contract"),
    fr("contractServiceID", RO, "ContractService"),
    fr("serviceID", RO, "Service"),
    fd("units", Ty::Int, RO),
    fd("price", Ty::Double, RO),
    fd("cost", Ty::Double, RO),
    fd("startDate", Ty::Date, RO),
    fd("endDate", Ty::Date, RO),
    fd("approveAndPostDate", Ty::Date, RO),
];

const CONTRACT_SERVICE_ADJUSTMENT_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fr("contractID", REQ, "Contract"),
    fr("contractServiceID", 0, "ContractService"),
    fr("serviceID", 0, "Service"),
    fd("unitChange", Ty::Int, REQ),
    fd("effectiveDate", Ty::Date, REQ),
    fd("adjustedUnitPrice", Ty::Double, 0),
    fd("adjustedUnitCost", Ty::Double, 0),
    fd("allowRepeatService", Ty::Bool, 0),
];

const BILLING_CODE_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fd("name", Ty::Str, RO),
    fd("description", Ty::Str, RO),
    fd("isActive", Ty::Bool, RO),
    fd("useType", Ty::Int, RO | PICK),
];

const TICKET_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fd("ticketNumber", Ty::Str, RO),
    fd("title", Ty::Str, REQ),
    fd("description", Ty::Str, 0),
    fr("companyID", REQ, "Company"),
    fr("contactID", 0, "Contact"),
    fr("contractID", 0, "Contract"),
    fd("queueID", Ty::Int, PICK),
    fd("status", Ty::Int, REQ | PICK),
    fd("priority", Ty::Int, REQ | PICK),
    fd("dueDateTime", Ty::Date, 0),
    fd("createDate", Ty::Date, RO),
    fd("lastActivityDate", Ty::Date, RO),
];

const SERVICE_FIELDS: &[FieldDef] = &[
    fd("id", Ty::Long, RO),
    fd("name", Ty::Str, REQ),
    fd("description", Ty::Str, 0),
    fd("invoiceDescription", Ty::Str, 0),
    fd("unitPrice", Ty::Double, 0),
    fd("unitCost", Ty::Double, 0),
    fd("periodType", Ty::Int, REQ | PICK),
    fr("billingCodeID", 0, "BillingCode"),
    fd("isActive", Ty::Bool, 0),
    fd("sku", Ty::Str, 0),
    fd("externalID", Ty::Str, 0),
    fd("lastModifiedDate", Ty::Date, RO),
];

impl Entity {
    pub(super) fn name(self) -> &'static str {
        match self {
            Entity::Companies => "Companies",
            Entity::Contacts => "Contacts",
            Entity::Contracts => "Contracts",
            Entity::ContractServices => "ContractServices",
            Entity::ContractServiceUnits => "ContractServiceUnits",
            Entity::ContractServiceAdjustments => "ContractServiceAdjustments",
            Entity::Services => "Services",
            Entity::BillingCodes => "BillingCodes",
            Entity::Tickets => "Tickets",
        }
    }
    /// Singular name (entityInformation `name`, error messages).
    pub(super) fn singular(self) -> &'static str {
        match self {
            Entity::Companies => "Company",
            Entity::Contacts => "Contact",
            Entity::Contracts => "Contract",
            Entity::ContractServices => "ContractService",
            Entity::ContractServiceUnits => "ContractServiceUnit",
            Entity::ContractServiceAdjustments => "ContractServiceAdjustment",
            Entity::Services => "Service",
            Entity::BillingCodes => "BillingCode",
            Entity::Tickets => "Ticket",
        }
    }
    pub(super) fn fields(self) -> &'static [FieldDef] {
        match self {
            Entity::Companies => COMPANY_FIELDS,
            Entity::Contacts => CONTACT_FIELDS,
            Entity::Contracts => CONTRACT_FIELDS,
            Entity::ContractServices => CONTRACT_SERVICE_FIELDS,
            Entity::ContractServiceUnits => CONTRACT_SERVICE_UNIT_FIELDS,
            Entity::ContractServiceAdjustments => CONTRACT_SERVICE_ADJUSTMENT_FIELDS,
            Entity::Services => SERVICE_FIELDS,
            Entity::BillingCodes => BILLING_CODE_FIELDS,
            Entity::Tickets => TICKET_FIELDS,
        }
    }
    pub(super) fn field(self, name: &str) -> Option<&'static FieldDef> {
        self.fields()
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
    pub(super) fn has_udfs(self) -> bool {
        matches!(
            self,
            Entity::Companies | Entity::Contacts | Entity::Contracts | Entity::Services
        )
    }
    pub(super) fn can_query(self) -> bool {
        self != Entity::ContractServiceAdjustments
    }
    pub(super) fn can_create(self) -> bool {
        matches!(
            self,
            Entity::Companies
                | Entity::Contacts
                | Entity::Contracts
                | Entity::ContractServices
                | Entity::ContractServiceAdjustments
                | Entity::Services
                | Entity::Tickets
        )
    }
    pub(super) fn can_update(self) -> bool {
        matches!(
            self,
            Entity::Companies
                | Entity::Contacts
                | Entity::Contracts
                | Entity::ContractServices
                | Entity::Services
                | Entity::Tickets
        )
    }
}
