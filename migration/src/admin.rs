//! admin_db: the audit trail of every state-changing mutation, and WARN/ERROR logs.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(Initial)]
    }
}

#[derive(DeriveIden)]
enum AuditTrail {
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

#[derive(DeriveIden)]
enum AdminLogs {
    Table,
    Id,
    Level,
    Message,
    Target,
    At,
    Fields,
}

#[derive(DeriveMigrationName)]
struct Initial;

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditTrail::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(AuditTrail::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(AuditTrail::ActorId).uuid().null())
                .col(ColumnDef::new(AuditTrail::Action).string_len(64).not_null())
                .col(
                    ColumnDef::new(AuditTrail::TargetType)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(AuditTrail::TargetId).string().null())
                .col(
                    ColumnDef::new(AuditTrail::Outcome)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(AuditTrail::Ip).string().null())
                .col(
                    ColumnDef::new(AuditTrail::At)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new(AuditTrail::Details).text().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_audit_at", AuditTrail::Table)
                .col(AuditTrail::At)
                .col(AuditTrail::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_audit_actor", AuditTrail::Table)
                .col(AuditTrail::ActorId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AdminLogs::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(AdminLogs::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(AdminLogs::Level).string_len(8).not_null())
                .col(ColumnDef::new(AdminLogs::Message).text().not_null())
                .col(ColumnDef::new(AdminLogs::Target).string().null())
                .col(
                    ColumnDef::new(AdminLogs::At)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(ColumnDef::new(AdminLogs::Fields).text().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_admin_logs_at", AdminLogs::Table)
                .col(AdminLogs::At)
                .col(AdminLogs::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AdminLogs::Table).if_exists().to_owned())
            .await?;
        m.drop_table(
            Table::drop()
                .table(AuditTrail::Table)
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
