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
    ID(id.to_string())
}
