//! The value of an update argument, as every update mutation receives it.

use crate::error::{Error, Result};

/// An update argument: omitted (keep the value), explicit null (clear it), or a value.
/// Update mutations take their optional arguments as this, so "omitted keeps, null clears"
/// is decided by the request's variables (see `schema::variables`), not per mutation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    /// Checks a given value; keeps `Keep` and `Clear` as they are.
    pub(crate) fn check<U>(self, check: impl FnOnce(T) -> Result<U>) -> Result<Patch<U>> {
        Ok(match self {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(v) => Patch::Set(check(v)?),
        })
    }

    /// For a field that may be changed but not cleared: an explicit null is refused,
    /// naming `field`.
    pub(crate) fn required(self, field: &str) -> Result<Option<T>> {
        match self {
            Patch::Keep => Ok(None),
            Patch::Clear => Err(Error::bad_input(
                field,
                format!("{field} cannot be cleared"),
            )),
            Patch::Set(v) => Ok(Some(v)),
        }
    }

    /// For a clearable field: `None` keeps, `Some(None)` clears, `Some(Some(v))` sets.
    pub(crate) fn clearable(self) -> Option<Option<T>> {
        match self {
            Patch::Keep => None,
            Patch::Clear => Some(None),
            Patch::Set(v) => Some(Some(v)),
        }
    }
}
