//! Rules and SOP checklists for the demo province, so the simulator's
//! storms, spikes, jams and silences become alerts and incidents on their
//! own. The incidents they open are assigned to the demo's agencies
//! (`bch-pctt-tkcn`, `so-tn-mt`, `so-gtvt`, `so-tt-tt`), which must exist.
//!
//! Two ways to use them: write [`RULES_TOML`] into the rules directory
//! (`rules.dir`) before the server starts, or call [`install`] on the store
//! before the server starts (the engine loads stored rules when it starts).

use crate::model::{Rule, RuleFile, parse_rule_file};
use panorama_core::{Invalid, Timestamp};
use panorama_store::{OpsStore, RuleRecord, SopTemplate, StoreResult};

/// The demo's rules file.
pub const RULES_TOML: &str = include_str!("../demo/binh-duong.toml");

/// The demo's rules and SOP templates, parsed.
pub fn rule_file() -> Result<RuleFile, Invalid> {
    parse_rule_file(RULES_TOML)
}

/// The demo's rules.
pub fn rules() -> Result<Vec<Rule>, Invalid> {
    Ok(rule_file()?.rules)
}

/// The demo's SOP templates.
pub fn sops() -> Result<Vec<SopTemplate>, Invalid> {
    Ok(rule_file()?.sops)
}

/// Stores the demo's rules (origin `demo`) and SOP templates.
pub async fn install(store: &dyn OpsStore, at: Timestamp) -> StoreResult<()> {
    let file = rule_file()?;
    for r in &file.rules {
        store
            .put_rule(&RuleRecord {
                id: r.id.clone(),
                definition: r.to_json(),
                enabled: r.enabled,
                origin: "demo".into(),
                version: 0,
                updated_at: at,
                updated_by: "demo".into(),
            })
            .await?;
    }
    store.put_sops(&file.sops).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_rules_parse_and_cover_every_kind_of_trouble() {
        let f = rule_file().unwrap();
        assert!(f.rules.len() >= 8);
        let types: std::collections::BTreeSet<&str> =
            f.sops.iter().map(|s| s.incident_type.as_str()).collect();
        for r in &f.rules {
            if let Some(i) = &r.incident {
                assert!(
                    types.contains(i.incident_type.as_str()),
                    "{} opens a {} incident without an SOP",
                    r.id,
                    i.incident_type
                );
            }
        }
        assert!(
            sops()
                .unwrap()
                .iter()
                .any(|s| s.incident_type == "flood" && s.steps.len() == 4)
        );
    }
}
