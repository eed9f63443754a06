//! Schema migrations, one `Migrator` per database, because each database belongs to one
//! domain and evolves on its own. Every migration runs on PostgreSQL and SQLite alike, so
//! only portable column types are used (UUIDs, text, integers, booleans, timestamps).

pub use sea_orm_migration::prelude::*;

mod admin;
mod appointments;
mod auth;
mod posts;
mod users;

pub use admin::Migrator as AdminMigrator;
pub use appointments::Migrator as AppointmentMigrator;
pub use auth::Migrator as AuthMigrator;
pub use posts::Migrator as PostMigrator;
pub use users::Migrator as UserMigrator;

/// Creates an index when it does not exist yet.
pub(crate) fn index(name: &str, table: impl Iden + 'static) -> IndexCreateStatement {
    Index::create()
        .name(name)
        .table(table)
        .if_not_exists()
        .to_owned()
}
