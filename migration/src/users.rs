//! user_db: public profiles, coach profiles and the specialty catalogue.
//!
//! `search_text` columns hold the lower-cased, accent-folded text that `coaches(search:)`
//! matches, computed by the server on write, so search behaves the same on PostgreSQL and
//! SQLite. `coach_profiles.listed` mirrors "not suspended" from auth_db, because the coach
//! directory must filter on it without a cross-database join.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(crate::AuditOutboxTable("m0002_users_audit_outbox")),
        ]
    }
}

#[derive(DeriveIden)]
enum UserProfiles {
    Table,
    UserId,
    DisplayName,
    Bio,
    AvatarMediaId,
    Timezone,
    SearchText,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CoachProfiles {
    Table,
    UserId,
    Headline,
    Bio,
    SessionMinutes,
    PriceCents,
    Currency,
    Timezone,
    RequiresApproval,
    Listed,
    SearchText,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Specialties {
    Table,
    Id,
    Slug,
    Name,
}

#[derive(DeriveIden)]
enum CoachSpecialties {
    Table,
    CoachId,
    SpecialtyId,
}

/// The catalogue the platform starts with (slug, name).
const SPECIALTIES: [(&str, &str); 10] = [
    ("nutrition", "Nutrition"),
    ("fitness", "Fitness"),
    ("yoga", "Yoga"),
    ("meditation", "Meditation"),
    ("sleep", "Sleep"),
    ("stress-management", "Stress management"),
    ("mental-health", "Mental health"),
    ("life-coaching", "Life coaching"),
    ("running", "Running"),
    ("pilates", "Pilates"),
];

#[derive(DeriveMigrationName)]
struct Initial;

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(UserProfiles::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(UserProfiles::UserId)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(UserProfiles::DisplayName)
                        .string()
                        .not_null(),
                )
                .col(ColumnDef::new(UserProfiles::Bio).text().null())
                .col(ColumnDef::new(UserProfiles::AvatarMediaId).uuid().null())
                .col(
                    ColumnDef::new(UserProfiles::Timezone)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(UserProfiles::SearchText).text().not_null())
                .col(
                    ColumnDef::new(UserProfiles::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(UserProfiles::UpdatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(CoachProfiles::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(CoachProfiles::UserId)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(CoachProfiles::Headline).string().not_null())
                .col(ColumnDef::new(CoachProfiles::Bio).text().null())
                .col(
                    ColumnDef::new(CoachProfiles::SessionMinutes)
                        .integer()
                        .not_null()
                        .default(60),
                )
                .col(ColumnDef::new(CoachProfiles::PriceCents).integer().null())
                .col(ColumnDef::new(CoachProfiles::Currency).string_len(3).null())
                .col(
                    ColumnDef::new(CoachProfiles::Timezone)
                        .string_len(64)
                        .null(),
                )
                .col(
                    ColumnDef::new(CoachProfiles::RequiresApproval)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(
                    ColumnDef::new(CoachProfiles::Listed)
                        .boolean()
                        .not_null()
                        .default(true),
                )
                .col(ColumnDef::new(CoachProfiles::SearchText).text().not_null())
                .col(
                    ColumnDef::new(CoachProfiles::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(CoachProfiles::UpdatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_coach_profiles_user")
                        .from(CoachProfiles::Table, CoachProfiles::UserId)
                        .to(UserProfiles::Table, UserProfiles::UserId)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_coach_profiles_listed", CoachProfiles::Table)
                .col(CoachProfiles::Listed)
                .col(CoachProfiles::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Specialties::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Specialties::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(Specialties::Slug)
                        .string_len(64)
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(Specialties::Name).string().not_null())
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(CoachSpecialties::Table)
                .if_not_exists()
                .col(ColumnDef::new(CoachSpecialties::CoachId).uuid().not_null())
                .col(
                    ColumnDef::new(CoachSpecialties::SpecialtyId)
                        .uuid()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(CoachSpecialties::CoachId)
                        .col(CoachSpecialties::SpecialtyId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_coach_specialties_coach")
                        .from(CoachSpecialties::Table, CoachSpecialties::CoachId)
                        .to(CoachProfiles::Table, CoachProfiles::UserId)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_coach_specialties_specialty")
                        .from(CoachSpecialties::Table, CoachSpecialties::SpecialtyId)
                        .to(Specialties::Table, Specialties::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_coach_specialties_specialty", CoachSpecialties::Table)
                .col(CoachSpecialties::SpecialtyId)
                .to_owned(),
        )
        .await?;

        let mut insert = Query::insert()
            .into_table(Specialties::Table)
            .columns([Specialties::Id, Specialties::Slug, Specialties::Name])
            .to_owned();
        for (slug, name) in SPECIALTIES {
            insert.values_panic([uuid::Uuid::now_v7().into(), slug.into(), name.into()]);
        }
        m.exec_stmt(insert).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            CoachSpecialties::Table.into_iden(),
            Specialties::Table.into_iden(),
            CoachProfiles::Table.into_iden(),
            UserProfiles::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
