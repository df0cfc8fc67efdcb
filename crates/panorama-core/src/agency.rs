//! Agencies (sở, ban, ngành) own data feeds, submit statistics and handle
//! incidents.

use crate::error::{Invalid, check_code, check_name};
use serde::{Deserialize, Serialize};

/// A government agency or organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Agency {
    /// Short stable code, e.g. `so-y-te`.
    pub code: String,
    /// Vietnamese name, e.g. `Sở Y tế`.
    pub name: String,
    /// English name, e.g. `Department of Health`.
    pub name_en: String,
    /// Admin unit the agency belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_unit: Option<String>,
}

impl Agency {
    /// Checks code and names.
    pub fn validate(&self) -> Result<(), Invalid> {
        let errs: Vec<_> = [
            check_code("code", &self.code).err(),
            check_name("name", &self.name).err(),
            check_name("name_en", &self.name_en).err(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errs))
        }
    }
}
