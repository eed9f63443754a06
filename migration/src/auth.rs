//! auth_db: credentials, sessions, refresh tokens and login failures.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(AttemptKinds),
            Box::new(ErasureLog),
            Box::new(crate::AuditOutboxTable("m0004_auth_audit_outbox")),
        ]
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    Role,
    Suspended,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
    RevokedAt,
    UserAgent,
    Ip,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    SessionId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Id,
    Email,
    Ip,
    At,
    Kind,
}

#[derive(DeriveIden)]
enum Erasures {
    Table,
    UserId,
    RequestedBy,
    StepsDone,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveMigrationName)]
struct Initial;

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .if_not_exists()
                .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
                .col(
                    ColumnDef::new(Users::Email)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(Users::PasswordHash).string().not_null())
                .col(ColumnDef::new(Users::Role).string_len(16).not_null())
                .col(
                    ColumnDef::new(Users::Suspended)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(
                    ColumnDef::new(Users::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Users::UpdatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_users_created", Users::Table)
                .col(Users::CreatedAt)
                .col(Users::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .if_not_exists()
                .col(ColumnDef::new(Sessions::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Sessions::UserId).uuid().not_null())
                .col(
                    ColumnDef::new(Sessions::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Sessions::LastUsedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Sessions::ExpiresAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Sessions::RevokedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(ColumnDef::new(Sessions::UserAgent).string().null())
                .col(ColumnDef::new(Sessions::Ip).string().null())
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_sessions_user")
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_sessions_user", Sessions::Table)
                .col(Sessions::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RefreshTokens::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(RefreshTokens::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(RefreshTokens::SessionId).uuid().not_null())
                .col(
                    ColumnDef::new(RefreshTokens::TokenHash)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(
                    ColumnDef::new(RefreshTokens::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RefreshTokens::ExpiresAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RefreshTokens::UsedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_refresh_tokens_session")
                        .from(RefreshTokens::Table, RefreshTokens::SessionId)
                        .to(Sessions::Table, Sessions::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_refresh_tokens_session", RefreshTokens::Table)
                .col(RefreshTokens::SessionId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(LoginFailures::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(LoginFailures::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(LoginFailures::Email).string().not_null())
                .col(ColumnDef::new(LoginFailures::Ip).string().not_null())
                .col(
                    ColumnDef::new(LoginFailures::At)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_login_failures_ip", LoginFailures::Table)
                .col(LoginFailures::Ip)
                .col(LoginFailures::At)
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_login_failures_email_ip", LoginFailures::Table)
                .col(LoginFailures::Email)
                .col(LoginFailures::Ip)
                .col(LoginFailures::At)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            LoginFailures::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Counted attempts of more than one kind (`login`, `register`), so registrations can be
/// limited per client address like logins.
struct AttemptKinds;

// Migrations are recorded by name; the first one of each file carries the file's name
// (what `DeriveMigrationName` gives), later ones name themselves.
impl MigrationName for AttemptKinds {
    fn name(&self) -> &str {
        "m0002_auth_attempt_kinds"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AttemptKinds {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(LoginFailures::Table)
                .add_column(
                    ColumnDef::new(LoginFailures::Kind)
                        .string_len(16)
                        .not_null()
                        .default("login"),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_login_failures_kind_ip", LoginFailures::Table)
                .col(LoginFailures::Kind)
                .col(LoginFailures::Ip)
                .col(LoginFailures::At)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_login_failures_kind_ip").to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(LoginFailures::Table)
                .drop_column(LoginFailures::Kind)
                .to_owned(),
        )
        .await
    }
}

/// The erasures asked for and how far each went: an erasure interrupted half-way (a
/// store down, a crash) resumes from its first undone step on the next `deleteUser` or
/// at the next start. A finished row stays, holding nothing but the erased id, so
/// erasing that id again answers that it is done.
struct ErasureLog;

impl MigrationName for ErasureLog {
    fn name(&self) -> &str {
        "m0003_auth_erasures"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ErasureLog {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Erasures::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Erasures::UserId)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Erasures::RequestedBy).uuid().null())
                .col(
                    ColumnDef::new(Erasures::StepsDone)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(
                    ColumnDef::new(Erasures::StartedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Erasures::FinishedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_erasures_pending", Erasures::Table)
                .col(Erasures::FinishedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Erasures::Table).if_exists().to_owned())
            .await
    }
}
