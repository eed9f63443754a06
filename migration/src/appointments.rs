//! appointment_db: coaches' weekly availability rules, their time off, the appointments,
//! and the log of booking events.
//!
//! Two appointments of one coach, or of one client, never overlap while they are active
//! (PENDING or CONFIRMED). On PostgreSQL the database itself says so: two exclusion
//! constraints over `tstzrange(starts_at, ends_at)` (btree_gist), so concurrent bookings
//! cannot both commit whatever the application read before. SQLite has no such
//! constraint; there the booking runs in one serialised write transaction that checks and
//! inserts (see `services::appointments`).
//!
//! `coach_id` and `client_id` are nullable: erasing an account keeps the other party's
//! history and clears the erased one's id.
//!
//! A person who coaches and also books as a client has one calendar: an appointment they
//! coach and one they attend must not overlap either. The per-column constraints above
//! cannot see across the two roles, so the second migration replaces them (PostgreSQL)
//! with `appointment_participants`: one row per person of each active appointment, kept
//! by a trigger in the very statement that inserts or changes the appointment (so in its
//! transaction, whoever writes it), under ONE exclusion constraint on
//! `(person_id, tstzrange(starts_at, ends_at))`. SQLite's serialised booking checks both
//! roles of both people instead.
//!
//! `booking_events` numbers every change (`seq`), so a replica whose LISTEN connection
//! dropped can replay from the table what it missed while reconnecting.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(Participants),
            Box::new(crate::AuditOutboxTable("m0003_appointments_audit_outbox")),
        ]
    }
}

#[derive(DeriveIden)]
enum AvailabilityRules {
    Table,
    Id,
    CoachId,
    Weekday,
    StartMinute,
    EndMinute,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TimeOff {
    Table,
    Id,
    CoachId,
    StartsAt,
    EndsAt,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Appointments {
    Table,
    Id,
    CoachId,
    ClientId,
    StartsAt,
    EndsAt,
    Status,
    Notes,
    CancelReason,
    CancelledBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BookingEvents {
    Table,
    Seq,
    AppointmentId,
    Kind,
    CoachId,
    ClientId,
    At,
}

#[derive(DeriveMigrationName)]
struct Initial;

fn timestamp(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AvailabilityRules::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(AvailabilityRules::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(AvailabilityRules::CoachId).uuid().not_null())
                .col(
                    ColumnDef::new(AvailabilityRules::Weekday)
                        .small_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(AvailabilityRules::StartMinute)
                        .integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(AvailabilityRules::EndMinute)
                        .integer()
                        .not_null(),
                )
                .col(timestamp(AvailabilityRules::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_availability_rules_coach", AvailabilityRules::Table)
                .col(AvailabilityRules::CoachId)
                .col(AvailabilityRules::Weekday)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TimeOff::Table)
                .if_not_exists()
                .col(ColumnDef::new(TimeOff::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(TimeOff::CoachId).uuid().not_null())
                .col(timestamp(TimeOff::StartsAt))
                .col(timestamp(TimeOff::EndsAt))
                .col(ColumnDef::new(TimeOff::Reason).text().null())
                .col(timestamp(TimeOff::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_time_off_coach_end", TimeOff::Table)
                .col(TimeOff::CoachId)
                .col(TimeOff::EndsAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Appointments::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Appointments::Id)
                        .uuid()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Appointments::CoachId).uuid().null())
                .col(ColumnDef::new(Appointments::ClientId).uuid().null())
                .col(timestamp(Appointments::StartsAt))
                .col(timestamp(Appointments::EndsAt))
                .col(
                    ColumnDef::new(Appointments::Status)
                        .string_len(16)
                        .not_null(),
                )
                .col(ColumnDef::new(Appointments::Notes).text().null())
                .col(ColumnDef::new(Appointments::CancelReason).text().null())
                .col(ColumnDef::new(Appointments::CancelledBy).uuid().null())
                .col(timestamp(Appointments::CreatedAt))
                .col(timestamp(Appointments::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_appointments_coach_start", Appointments::Table)
                .col(Appointments::CoachId)
                .col(Appointments::StartsAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_appointments_client_start", Appointments::Table)
                .col(Appointments::ClientId)
                .col(Appointments::StartsAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_appointments_status_start", Appointments::Table)
                .col(Appointments::Status)
                .col(Appointments::StartsAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(BookingEvents::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(BookingEvents::Seq)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(BookingEvents::AppointmentId)
                        .uuid()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(BookingEvents::Kind)
                        .string_len(16)
                        .not_null(),
                )
                .col(ColumnDef::new(BookingEvents::CoachId).uuid().null())
                .col(ColumnDef::new(BookingEvents::ClientId).uuid().null())
                .col(timestamp(BookingEvents::At))
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_booking_events_at", BookingEvents::Table)
                .col(BookingEvents::At)
                .to_owned(),
        )
        .await?;

        if m.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            let db = m.get_connection();
            db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS btree_gist")
                .await?;
            for (name, column) in [
                ("appointments_coach_no_overlap", "coach_id"),
                ("appointments_client_no_overlap", "client_id"),
            ] {
                db.execute_unprepared(&format!(
                    "ALTER TABLE appointments ADD CONSTRAINT {name} EXCLUDE USING gist \
                     ({column} WITH =, tstzrange(starts_at, ends_at) WITH &&) \
                     WHERE (status IN ('PENDING', 'CONFIRMED'))"
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            BookingEvents::Table.into_iden(),
            Appointments::Table.into_iden(),
            TimeOff::Table.into_iden(),
            AvailabilityRules::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// One calendar per person across their roles (see the module's documentation).
struct Participants;

// Migrations are recorded by name; the first one of the file carries the file's name
// (what `DeriveMigrationName` gives), later ones name themselves.
impl MigrationName for Participants {
    fn name(&self) -> &str {
        "m0002_appointment_participants"
    }
}

/// Keeps `appointment_participants` equal to the active appointments' people: on every
/// insert or update of an appointment its rows are rewritten (none once it is no longer
/// PENDING or CONFIRMED, one per distinct known person otherwise). The exclusion
/// constraint then fails the appointment's own statement with 23P01.
const SYNC_PARTICIPANTS: &str = r#"
CREATE OR REPLACE FUNCTION appointment_participants_sync() RETURNS trigger AS $$
BEGIN
  DELETE FROM appointment_participants WHERE appointment_id = NEW.id;
  IF NEW.status IN ('PENDING', 'CONFIRMED') THEN
    INSERT INTO appointment_participants (person_id, appointment_id, starts_at, ends_at)
    SELECT DISTINCT p, NEW.id, NEW.starts_at, NEW.ends_at
    FROM unnest(ARRAY[NEW.coach_id, NEW.client_id]) AS p
    WHERE p IS NOT NULL;
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql"#;

#[async_trait::async_trait]
impl MigrationTrait for Participants {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        for statement in [
            "CREATE TABLE IF NOT EXISTS appointment_participants (\
               person_id uuid NOT NULL, \
               appointment_id uuid NOT NULL REFERENCES appointments (id) ON DELETE CASCADE, \
               starts_at timestamptz NOT NULL, \
               ends_at timestamptz NOT NULL, \
               PRIMARY KEY (appointment_id, person_id), \
               CONSTRAINT appointment_participants_no_overlap EXCLUDE USING gist \
                 (person_id WITH =, tstzrange(starts_at, ends_at) WITH &&))",
            SYNC_PARTICIPANTS,
            "DROP TRIGGER IF EXISTS appointments_participants ON appointments",
            "CREATE TRIGGER appointments_participants \
               AFTER INSERT OR UPDATE OF status, coach_id, client_id, starts_at, ends_at \
               ON appointments FOR EACH ROW EXECUTE FUNCTION appointment_participants_sync()",
            "INSERT INTO appointment_participants (person_id, appointment_id, starts_at, ends_at) \
               SELECT DISTINCT p, a.id, a.starts_at, a.ends_at \
               FROM appointments a, unnest(ARRAY[a.coach_id, a.client_id]) AS p \
               WHERE p IS NOT NULL AND a.status IN ('PENDING', 'CONFIRMED') \
               ON CONFLICT DO NOTHING",
            "ALTER TABLE appointments DROP CONSTRAINT IF EXISTS appointments_coach_no_overlap",
            "ALTER TABLE appointments DROP CONSTRAINT IF EXISTS appointments_client_no_overlap",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        for statement in [
            "DROP TRIGGER IF EXISTS appointments_participants ON appointments",
            "DROP FUNCTION IF EXISTS appointment_participants_sync()",
            "DROP TABLE IF EXISTS appointment_participants",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
