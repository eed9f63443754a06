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

#[derive(DeriveIden)]
enum AuditOutbox {
    Table,
    Id,
    ActorId,
    Action,
    TargetType,
    TargetId,
    Outcome,
    Ip,
    At,
    Details,
}

/// `audit_outbox`, the same table in auth_db, user_db, post_db and appointment_db (the
/// columns of admin_db's `audit_trail`): a change writes its audit entry here in its own
/// transaction, and the entry is moved to admin_db after the commit (at once, or by
/// housekeeping when admin_db could not take it). One migration type for the four
/// databases; each records it under its own name (the `.0`).
pub(crate) struct AuditOutboxTable(pub(crate) &'static str);

impl MigrationName for AuditOutboxTable {
    fn name(&self) -> &str {
        self.0
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AuditOutboxTable {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditOutbox::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(AuditOutbox::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(AuditOutbox::ActorId).uuid().null())
                .col(
                    ColumnDef::new(AuditOutbox::Action)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(AuditOutbox::TargetType)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(AuditOutbox::TargetId).string().null())
                .col(
                    ColumnDef::new(AuditOutbox::Outcome)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(AuditOutbox::Ip).string().null())
                .col(
                    ColumnDef::new(AuditOutbox::At)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new(AuditOutbox::Details).text().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(AuditOutbox::Table)
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
