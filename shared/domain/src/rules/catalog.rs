//! The rules catalogue: what each SPEC rule decides, in the words of the code that decides it.
//!
//! Generated at build time (`shared/domain/build.rs`) from the doc comments in
//! `src/rules/*.rs` and `src/config.rs`: every doc block naming a rule ID (`R-PROV-4`, also
//! written `R-PROV-4/5` or `R-MAP-1..5`) is one entry per ID it names, so the doc comment is the
//! one source of truth. A rule decided by several functions has several entries.

/// One doc block naming a rule, under one of the IDs it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDoc {
    /// The rule ID, e.g. `R-PROV-4`.
    pub id: &'static str,
    /// The block's first sentence on one line, without a leading `R-…:` label.
    pub summary: &'static str,
    /// The whole doc block as written (Markdown; lines joined with `\n`).
    pub text: &'static str,
    /// What it documents: `rules/provisioning.rs::desired_item`, `rules/webhooks.rs::HookError::status`,
    /// or a file (`rules/settings.rs`) for a module's own doc.
    pub source: &'static str,
    /// Every rule ID the block names, in order of first mention (`id` among them).
    pub ids: &'static [&'static str],
}

include!(concat!(env!("OUT_DIR"), "/rules_catalog.rs"));

/// Every entry, ordered by SPEC section (R-SET, R-MAP, R-CO, R-PROV, R-TWO, R-USE, R-TKT, R-HOOK,
/// R-STAT, R-REL), then rule number, then source (file name, then position in the file). The
/// entries of one ID are next to each other.
pub fn catalog() -> &'static [RuleDoc] {
    CATALOG
}

/// Every entry of a rule, `id` compared case-insensitively (`r-prov-4` finds `R-PROV-4`) and
/// trimmed; `None` when no doc comment names it.
pub fn rule(id: &str) -> Option<&'static [RuleDoc]> {
    let id = id.trim();
    let start = CATALOG.iter().position(|d| d.id.eq_ignore_ascii_case(id))?;
    let len = CATALOG[start..]
        .iter()
        .take_while(|d| d.id.eq_ignore_ascii_case(id))
        .count();
    Some(&CATALOG[start..start + len])
}

/// The distinct rule IDs of the catalogue, in catalogue order.
pub fn rule_ids() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = CATALOG.iter().map(|d| d.id).collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn well_formed(id: &str) -> bool {
        let mut parts = id.split('-');
        matches!(
            (parts.next(), parts.next(), parts.next(), parts.next()),
            (Some("R"), Some(s), Some(n), None)
                if !s.is_empty()
                    && s.chars().all(|c| c.is_ascii_uppercase())
                    && !n.is_empty()
                    && !n.starts_with('0')
                    && n.chars().all(|c| c.is_ascii_digit())
        )
    }

    #[test]
    fn the_catalogue_is_not_empty_and_every_id_is_well_formed() {
        assert!(catalog().len() > 20, "{}", catalog().len());
        for d in catalog() {
            assert!(well_formed(d.id), "{d:?}");
            assert!(d.ids.contains(&d.id), "{d:?}");
            assert!(d.ids.iter().all(|i| well_formed(i)), "{d:?}");
            assert!(!d.summary.is_empty() && !d.summary.contains('\n'), "{d:?}");
        }
    }

    #[test]
    fn r_prov_4_is_found_case_insensitively_and_says_soft_quota_and_payg() {
        let docs = rule("R-PROV-4").expect("R-PROV-4");
        assert!(docs.iter().all(|d| d.id == "R-PROV-4"));
        assert!(
            docs.iter()
                .any(|d| d.text.contains("soft quota") && d.text.contains("PAYG")),
            "{docs:#?}"
        );
        assert!(docs
            .iter()
            .any(|d| d.source == "rules/provisioning.rs::desired_item"));
        assert_eq!(rule(" r-prov-4 "), Some(docs));
        assert_eq!(rule("R-PROV-40"), None);
        assert_eq!(rule("R-PROV"), None);
        assert_eq!(rule(""), None);
    }

    #[test]
    fn an_id_is_listed_once_per_doc_block_naming_it_even_as_a_range() {
        // `resolve` says "R-MAP-1..5": R-MAP-4 is among them.
        let docs = rule("R-MAP-4").unwrap();
        assert!(
            docs.iter().any(|d| d.source == "config/mod.rs::resolve"),
            "{docs:#?}"
        );
        // "R-PROV-4/5" in plan_company's doc names R-PROV-5.
        let docs = rule("R-PROV-5").unwrap();
        assert!(docs
            .iter()
            .any(|d| d.source == "rules/provisioning.rs::plan_company"));
        for id in rule_ids() {
            let docs = rule(id).unwrap();
            let mut sources: Vec<&str> = docs.iter().map(|d| d.source).collect();
            let n = sources.len();
            sources.dedup();
            assert_eq!(sources.len(), n, "{id}: {sources:?}");
        }
    }

    #[test]
    fn the_catalogue_is_in_spec_order() {
        let ids = rule_ids();
        let pos = |id: &str| ids.iter().position(|i| *i == id).unwrap();
        assert!(pos("R-SET-1") < pos("R-MAP-1"));
        assert!(pos("R-MAP-6") < pos("R-CO-1"));
        assert!(pos("R-PROV-7") < pos("R-PROV-10"));
        assert!(pos("R-TWO-2") < pos("R-HOOK-2"));
    }

    /// The rules the code decides in these files: each must be in the catalogue, so a doc
    /// comment that stops naming its rule is noticed. (Rules decided elsewhere — services,
    /// adapters, the CLI, the template — and rules not built yet are not listed.)
    const DECIDED_HERE: &[&str] = &[
        "R-SET-1",
        "R-SET-2",
        "R-SET-3",
        "R-MAP-1",
        "R-MAP-2",
        "R-MAP-3",
        "R-MAP-4",
        "R-MAP-5",
        "R-MAP-6",
        "R-CO-1",
        "R-CO-2",
        "R-CO-3",
        "R-CO-4",
        "R-CO-5",
        "R-PROV-1",
        "R-PROV-2",
        "R-PROV-3",
        "R-PROV-4",
        "R-PROV-5",
        "R-PROV-6",
        "R-PROV-7",
        "R-PROV-10",
        "R-PROV-11",
        "R-TWO-1",
        "R-TWO-2",
        "R-HOOK-2",
        "R-HOOK-3",
        "R-HOOK-4",
    ];

    #[test]
    fn every_rule_decided_in_the_rules_files_is_in_the_catalogue() {
        let missing: Vec<&&str> = DECIDED_HERE
            .iter()
            .filter(|id| rule(id).is_none())
            .collect();
        assert!(missing.is_empty(), "{missing:?}");
    }
}
