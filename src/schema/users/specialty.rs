//! `Specialty`: an entry of the catalogue coaches pick from (user_db).

use async_graphql::{Object, ID};

use crate::{db::users::specialty, schema::ids};

#[derive(Clone)]
pub(crate) struct Specialty {
    pub(crate) row: specialty::Model,
}

#[Object]
impl Specialty {
    async fn id(&self) -> ID {
        ids::to_id(self.row.id)
    }

    /// Stable key for filters and URLs, e.g. `stress-management`.
    async fn slug(&self) -> &str {
        &self.row.slug
    }

    async fn name(&self) -> &str {
        &self.row.name
    }
}
