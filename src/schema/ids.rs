//! IDs are `ID` strings holding UUIDs (v7) in the schema; they are parsed at the edge so
//! that a malformed one is a `BAD_USER_INPUT` naming the argument, never a database error.

use async_graphql::ID;
use uuid::Uuid;

use crate::error::{Error, Result};

pub(crate) fn parse(field: &str, id: &ID) -> Result<Uuid> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| Error::bad_input(field, format!("{field} is not a valid ID")))
}

pub(crate) fn to_id(id: Uuid) -> ID {
    ID(text(id, &mut Uuid::encode_buffer()).to_owned())
}

/// An id as the schema writes it: the hyphenated lower-case form `to_string` writes,
/// without the formatting machinery (a feed page writes a hundred ids), in `buf`
/// (`Uuid::encode_buffer()`).
pub(crate) fn text(id: Uuid, buf: &mut [u8]) -> &str {
    id.hyphenated().encode_lower(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_as_uuids_display_them() {
        for id in [Uuid::nil(), Uuid::max(), Uuid::now_v7(), Uuid::new_v4()] {
            assert_eq!(to_id(id).0, id.to_string());
        }
    }
}
