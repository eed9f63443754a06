//! Text inputs: trimmed, then bounded, with the field named in the error so a form can
//! point at it.

use crate::error::{Error, Result};

/// Trims `value` and checks its length in characters (not bytes: "é" counts once).
pub(crate) fn bounded(field: &str, value: &str, min: usize, max: usize) -> Result<String> {
    let trimmed = value.trim();
    // PostgreSQL cannot store a NUL character in text: a client's mistake, not ours.
    if trimmed.contains('\0') {
        return Err(Error::bad_input(
            field,
            format!("{field} must not contain NUL characters"),
        ));
    }
    let len = trimmed.chars().count();
    if len < min {
        return Err(Error::bad_input(
            field,
            if min == 1 {
                format!("{field} must not be empty")
            } else {
                format!("{field} must be at least {min} characters")
            },
        ));
    }
    if len > max {
        return Err(Error::bad_input(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(trimmed.to_string())
}

/// Like [`bounded`] for optional text where an empty string means "none".
pub(crate) fn optional(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => bounded(field, v, 1, max).map(Some),
    }
}

/// Lower-cased, accent-folded text for search columns (and the terms searched for), so
/// both backends match "Élodie" with "elodie" alike.
pub(crate) fn search_text(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| deunicode::deunicode(p).to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `%term%` for LIKE, with the wildcards of the term itself escaped (`\\` is the escape).
pub(crate) fn contains_pattern(term: &str) -> String {
    let escaped = term
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_characters_not_bytes() {
        assert_eq!(bounded("name", "  éé ", 1, 2).unwrap(), "éé");
        assert!(bounded("name", "ééé", 1, 2).is_err());
    }

    #[test]
    fn empty_after_trim_is_refused() {
        let err = bounded("displayName", "   ", 1, 80).unwrap_err();
        assert_eq!(err.code(), "BAD_USER_INPUT");
    }

    #[test]
    fn optional_empty_is_none() {
        assert_eq!(optional("bio", Some("  "), 10).unwrap(), None);
        assert_eq!(optional("bio", None, 10).unwrap(), None);
    }

    #[test]
    fn search_text_folds_accents_and_case() {
        assert_eq!(
            search_text(&["Élodie", "Coach Sénior"]),
            "elodie coach senior"
        );
    }

    #[test]
    fn wildcards_of_the_term_are_escaped() {
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
