//! Validation errors that name the offending field, so every bad request can
//! be answered with a problem+json saying exactly what is wrong and where.

use serde::Serialize;

/// One reason a value was refused, with the JSON path of the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON path of the offending field, e.g. `items[3].value`.
    pub field: String,
    /// Human-readable reason, e.g. `must be a finite number`.
    pub reason: String,
}

impl FieldError {
    /// A field error at `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error nested under `prefix` (`items[3]` + `value` → `items[3].value`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// A value failed validation; holds every field error found, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>().join("; "))]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    /// A single-field validation failure.
    pub fn one(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, reason)])
    }

    /// Every error nested under `prefix`.
    pub fn under(self, prefix: &str) -> Self {
        Self(self.0.into_iter().map(|e| e.under(prefix)).collect())
    }
}

impl From<FieldError> for Invalid {
    fn from(e: FieldError) -> Self {
        Self(vec![e])
    }
}

/// Checks that a code (admin unit, domain, agency, indicator) is non-empty,
/// short and made of safe characters.
pub fn check_code(field: &str, code: &str) -> Result<(), FieldError> {
    if code.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if code.len() > 64 {
        return Err(FieldError::new(field, "must be at most 64 characters"));
    }
    if !code
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(FieldError::new(
            field,
            "may contain only ASCII letters, digits, '_', '-' and '.'",
        ));
    }
    Ok(())
}

/// Checks that a display name is non-empty and not absurdly long.
pub fn check_name(field: &str, name: &str) -> Result<(), FieldError> {
    if name.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if name.chars().count() > 300 {
        return Err(FieldError::new(field, "must be at most 300 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_builds_json_paths() {
        let e = FieldError::new("value", "bad").under("[3]").under("items");
        assert_eq!(e.field, "items[3].value");
    }

    #[test]
    fn codes_reject_spaces_and_empty() {
        assert!(check_code("code", "718").is_ok());
        assert!(check_code("code", "").is_err());
        assert!(check_code("code", "a b").is_err());
    }
}
