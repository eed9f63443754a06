//! Booking events: after a booking, confirmation, cancellation or completion commits,
//! the coach and the client of that appointment hear of it on every replica.
//!
//! Every change writes a numbered row to `booking_events` in its own transaction. With
//! PostgreSQL the same transaction sends `pg_notify` (ids only, far under the 8,000-byte
//! limit); PostgreSQL delivers it at COMMIT, so nobody hears of a change that rolled back.
//! Each process LISTENs on one dedicated connection ([`listen`]) and fans the events out
//! to its subscribers through bounded broadcast channels, one per subscribed user. sqlx's listener loses what is
//! sent while it reconnects, and a half-open TCP connection can hang a receive: the
//! connection is heartbeaten when idle, rebuilt after any failure, and after every
//! (re)connection the rows numbered since the last event seen are replayed from the
//! table, so a subscriber misses nothing across a database blip. Embedded, the change
//! publishes straight to the broadcast channel after its commit.
//!
//! The channels are bounded: a subscriber that falls more than their capacity behind is
//! told so ([`Lagged`]) and dropped, never holding memory without bound.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{
    db::appointments::{appointment, booking_event},
    error::Result,
};

/// The NOTIFY channel on appointment_db.
pub(crate) const CHANNEL: &str = "jolmood_booking_events";
/// The `application_name` of the LISTEN connection, so operators can tell it apart.
pub(crate) const LISTENER_NAME: &str = "jolmood-booking-listener";
/// Events one user's subscribers may fall behind by before they are dropped.
const CAPACITY: usize = 64;
/// An idle LISTEN connection is checked this often.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a heartbeat may take before the connection counts as dead.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows before the last one seen that a replay looks at again: events commit out of
/// sequence order under concurrency, so one numbered lower may arrive later.
const REPLAY_MARGIN: i64 = 1_000;
/// Sequence numbers remembered to deliver each event once.
const SEEN: usize = 4_096;

/// What happened to an appointment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    Booked,
    Confirmed,
    Cancelled,
    Completed,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Booked => "BOOKED",
            Kind::Confirmed => "CONFIRMED",
            Kind::Cancelled => "CANCELLED",
            Kind::Completed => "COMPLETED",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        match s {
            "BOOKED" => Some(Kind::Booked),
            "CONFIRMED" => Some(Kind::Confirmed),
            "CANCELLED" => Some(Kind::Cancelled),
            "COMPLETED" => Some(Kind::Completed),
            _ => None,
        }
    }
}

/// One event as subscribers receive it: ids only, the appointment is read when sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Event {
    pub(crate) seq: i64,
    pub(crate) kind: Kind,
    pub(crate) appointment_id: Uuid,
    pub(crate) coach_id: Option<Uuid>,
    pub(crate) client_id: Option<Uuid>,
    pub(crate) at: DateTime<Utc>,
}

impl Event {
    fn from_row(row: booking_event::Model) -> Option<Event> {
        Some(Event {
            seq: row.seq,
            kind: Kind::parse(&row.kind)?,
            appointment_id: row.appointment_id,
            coach_id: row.coach_id,
            client_id: row.client_id,
            at: row.at,
        })
    }
}

/// A subscriber fell too far behind and was dropped.
#[derive(Debug)]
pub(crate) struct Lagged;

/// Each subscribed user's channel, by user id: an event wakes only the subscribers of
/// its coach and its client, whatever the number of subscribers of the process.
type Routes = Arc<Mutex<HashMap<Uuid, broadcast::Sender<Event>>>>;

/// This process's fan-out of booking events to its subscribers.
pub(crate) struct Bus {
    routes: Routes,
    /// True when events travel through PostgreSQL (the listener publishes them).
    notify: bool,
}

impl Bus {
    pub(crate) fn new(backend: DatabaseBackend) -> Bus {
        Bus {
            routes: Routes::default(),
            notify: backend == DatabaseBackend::Postgres,
        }
    }

    /// Publishes events whose change has committed. With PostgreSQL they already travel
    /// by NOTIFY (to this process too), so this only serves the embedded backend.
    pub(crate) fn committed(&self, events: Vec<Event>) {
        if self.notify {
            return;
        }
        for event in events {
            self.publish(event);
        }
    }

    /// The events `user` is a party to, from now on. The stream ends with `Err(Lagged)`
    /// when the subscriber falls more than the channel's capacity behind.
    pub(crate) fn subscribe(
        &self,
        user: Uuid,
    ) -> impl futures_util::Stream<Item = std::result::Result<Event, Lagged>> + Send + 'static {
        let rx = match self.routes.lock() {
            Ok(mut routes) => Some(
                routes
                    .entry(user)
                    .or_insert_with(|| broadcast::channel(CAPACITY).0)
                    .subscribe(),
            ),
            Err(_) => None,
        };
        let sub = Subscription {
            rx,
            user,
            routes: self.routes.clone(),
        };
        futures_util::stream::unfold(sub, |mut sub| async move {
            let rx = sub.rx.as_mut()?;
            match rx.recv().await {
                Ok(event) => Some((Ok(event), sub)),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    sub.rx = None;
                    Some((Err(Lagged), sub))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
    }

    /// Subscribers of this process now (for `/metrics`).
    pub(crate) fn subscribers(&self) -> usize {
        self.routes
            .lock()
            .map(|r| r.values().map(|tx| tx.receiver_count()).sum())
            .unwrap_or(0)
    }

    fn publish(&self, event: Event) {
        let Ok(routes) = self.routes.lock() else {
            return;
        };
        let mut parties = [event.coach_id, event.client_id];
        if parties[0] == parties[1] {
            parties[1] = None;
        }
        for user in parties.into_iter().flatten() {
            if let Some(tx) = routes.get(&user) {
                // A channel without receivers left is removed by its last subscription.
                let _ = tx.send(event.clone());
            }
        }
    }
}

/// One subscriber's receiver; when it goes, the user's channel goes with its last one.
struct Subscription {
    rx: Option<broadcast::Receiver<Event>>,
    user: Uuid,
    routes: Routes,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.rx.take());
        if let Ok(mut routes) = self.routes.lock() {
            if routes
                .get(&self.user)
                .is_some_and(|tx| tx.receiver_count() == 0)
            {
                routes.remove(&self.user);
            }
        }
    }
}

/// Records `kind` for `row` in the change's transaction (and, with PostgreSQL, sends
/// its NOTIFY there). The caller hands the result to [`Bus::committed`] after the commit.
pub(crate) async fn record(
    txn: &impl ConnectionTrait,
    kind: Kind,
    row: &appointment::Model,
    at: DateTime<Utc>,
) -> Result<Event> {
    let saved = booking_event::ActiveModel {
        seq: NotSet,
        appointment_id: Set(row.id),
        kind: Set(kind.as_str().into()),
        coach_id: Set(row.coach_id),
        client_id: Set(row.client_id),
        at: Set(at),
    }
    .insert(txn)
    .await?;
    let event = Event {
        seq: saved.seq,
        kind,
        appointment_id: row.id,
        coach_id: row.coach_id,
        client_id: row.client_id,
        at,
    };
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        let payload = serde_json::to_string(&event).map_err(crate::error::Error::internal)?;
        txn.execute(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), payload.into()],
        ))
        .await?;
    }
    Ok(event)
}

/// Events numbered after `after`, oldest first (at most `limit`).
async fn since(db: &DatabaseConnection, after: i64, limit: u64) -> Result<Vec<Event>> {
    let rows = booking_event::Entity::find()
        .filter(booking_event::Column::Seq.gt(after))
        .order_by_asc(booking_event::Column::Seq)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows.into_iter().filter_map(Event::from_row).collect())
}

/// The highest sequence number written so far (0 when none).
async fn last_seq(db: &DatabaseConnection) -> Result<i64> {
    let row = booking_event::Entity::find()
        .order_by_desc(booking_event::Column::Seq)
        .one(db)
        .await?;
    Ok(row.map(|r| r.seq).unwrap_or(0))
}

/// Delivers each sequence number once, remembering the last few thousand.
struct Delivered {
    seen: HashSet<i64>,
    order: VecDeque<i64>,
    highest: i64,
    /// The last event written when this process started: a replay does not send it or
    /// any numbered before it (they predate every subscriber). A notification is always
    /// new, whatever its number: a change whose event was numbered before the process
    /// started may commit after it (numbers are taken at insert, not at commit).
    floor: i64,
}

impl Delivered {
    fn new(highest: i64) -> Delivered {
        Delivered {
            seen: HashSet::new(),
            order: VecDeque::new(),
            highest,
            floor: highest,
        }
    }

    /// True the first time `seq` is offered; `replayed`: read from the table rather
    /// than notified (see `floor`).
    fn first_time(&mut self, seq: i64, replayed: bool) -> bool {
        if (replayed && seq <= self.floor) || !self.seen.insert(seq) {
            return false;
        }
        self.order.push_back(seq);
        if self.order.len() > SEEN {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.highest = self.highest.max(seq);
        true
    }
}

/// Runs for the life of the process (PostgreSQL only): LISTENs on one dedicated
/// connection and publishes what arrives to `bus`, replaying from the table after every
/// (re)connection. Never returns.
pub(crate) async fn listen(services: crate::services::SharedServices) {
    use sea_orm::sqlx::{postgres::PgListener, Executor};

    let db = services.stores.appointments.clone();
    let bus = &services.events;
    let pool = db.get_postgres_connection_pool().clone();
    let mut backoff = Duration::from_millis(100);
    // Events up to the last one written now predate this process: only later ones are
    // sent. Read before the first LISTEN, and replayed after it like after any
    // reconnection, so nothing committed in between is lost.
    let mut delivered = loop {
        match last_seq(&db).await {
            Ok(seq) => break Delivered::new(seq),
            Err(e) => {
                tracing::warn!(error = %e, "booking events: cannot read the log, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener
                .execute(format!("SET application_name = '{LISTENER_NAME}'").as_str())
                .await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        }
        .await;
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "booking events: cannot LISTEN, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // Listening now: whatever committed before is in the table.
        if let Err(e) = replay(&db, bus, &mut delivered).await {
            tracing::warn!(error = %e, "booking events: replay failed, reconnecting");
            tokio::time::sleep(backoff).await;
            continue;
        }
        let d = &mut delivered;
        loop {
            match tokio::time::timeout(HEARTBEAT, listener.try_recv()).await {
                Ok(Ok(Some(n))) => match serde_json::from_str::<Event>(n.payload()) {
                    Ok(event) => {
                        if d.first_time(event.seq, false) {
                            bus.publish(event);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "booking events: unreadable payload"),
                },
                Ok(Ok(None)) | Ok(Err(_)) => {
                    tracing::info!("booking events: LISTEN connection lost, reconnecting");
                    break;
                }
                Err(_) => {
                    let alive =
                        tokio::time::timeout(HEARTBEAT_TIMEOUT, listener.execute("SELECT 1")).await;
                    if !matches!(alive, Ok(Ok(_))) {
                        tracing::info!("booking events: LISTEN connection silent, reconnecting");
                        break;
                    }
                }
            }
        }
    }
}

/// Publishes what was written since (a margin before) the last event seen.
async fn replay(db: &DatabaseConnection, bus: &Bus, delivered: &mut Delivered) -> Result<()> {
    let mut after = (delivered.highest - REPLAY_MARGIN).max(0);
    loop {
        let batch = since(db, after, 500).await?;
        let Some(last) = batch.last().map(|e| e.seq) else {
            return Ok(());
        };
        for event in batch {
            if delivered.first_time(event.seq, true) {
                bus.publish(event);
            }
        }
        after = last;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sequence_number_is_delivered_once() {
        let mut d = Delivered::new(10);
        assert!(d.first_time(12, false));
        assert!(!d.first_time(12, true));
        assert!(d.first_time(11, true));
        assert!(!d.first_time(11, false));
        assert!(
            !d.first_time(5, true),
            "replayed from before the process started"
        );
        assert!(
            d.first_time(6, false),
            "numbered before the process started, committed after"
        );
        assert!(!d.first_time(6, true));
        assert_eq!(d.highest, 12);
        for seq in 100..(100 + SEEN as i64 + 1) {
            assert!(d.first_time(seq, false));
        }
        assert!(d.seen.len() <= SEEN);
    }

    fn event(seq: i64, coach: Uuid, client: Uuid) -> Event {
        Event {
            seq,
            kind: Kind::Booked,
            appointment_id: Uuid::now_v7(),
            coach_id: Some(coach),
            client_id: Some(client),
            at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn subscribers_get_their_own_events_and_a_slow_one_is_dropped() {
        use futures_util::{FutureExt, StreamExt};
        let bus = Bus::new(DatabaseBackend::Sqlite);
        let (coach, client, stranger) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut reader = Box::pin(bus.subscribe(client));
        let mut silent = Box::pin(bus.subscribe(coach));
        let mut of_stranger = Box::pin(bus.subscribe(stranger));
        assert_eq!(bus.subscribers(), 3);
        bus.committed(vec![event(1, coach, client)]);
        assert_eq!(reader.next().await.unwrap().unwrap().seq, 1);
        // The coach's subscriber reads nothing and falls behind by more than its channel
        // holds: it is dropped, not buffered; the client's keeps up.
        for seq in 2..(CAPACITY as i64 + 10) {
            bus.committed(vec![event(seq, coach, client)]);
            assert_eq!(reader.next().await.unwrap().unwrap().seq, seq);
        }
        assert!(matches!(silent.next().await, Some(Err(Lagged))));
        assert!(silent.next().await.is_none());
        assert!(
            of_stranger.next().now_or_never().is_none(),
            "nothing for a stranger"
        );
        drop(silent);
        drop(reader);
        assert_eq!(bus.subscribers(), 1);
        assert_eq!(
            bus.routes.lock().unwrap().len(),
            1,
            "channels go with their last subscriber"
        );
    }

    #[test]
    fn a_notification_payload_is_small() {
        let event = Event {
            seq: i64::MAX,
            kind: Kind::Cancelled,
            appointment_id: Uuid::now_v7(),
            coach_id: Some(Uuid::now_v7()),
            client_id: Some(Uuid::now_v7()),
            at: Utc::now(),
        };
        let payload = serde_json::to_string(&event).unwrap();
        assert!(payload.len() < 8_000);
        assert_eq!(serde_json::from_str::<Event>(&payload).unwrap(), event);
    }
}
