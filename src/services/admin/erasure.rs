//! Erasing an account across every store (`deleteUser`): a person's request to be
//! forgotten, or an admin's decision.
//!
//! Each domain erases its own part; this only orders them and keeps count. The first
//! step (auth) suspends the account and revokes its sessions in the transaction that
//! records the erasure, so from then on the account cannot be used, whatever fails
//! after. The steps then run in order, each in one transaction of its own store and
//! counted in the record when done: appointments (future ones cancelled with events for
//! the other party, this side of the others set null, availability and time off gone),
//! posts (posts, likes, comments, and the counts they fed), media (every file, taken off
//! profiles and posts first), the profile, and last the credentials, which also closes
//! the record. A step that fails stops the erasure; the next `deleteUser` of that id, or
//! the housekeeping at the next start (and every five minutes), resumes it at the first
//! step not counted. Every step is idempotent, so one that ran but was not counted (a
//! crash in between) runs again harmlessly. The audit trail keeps its entries, whose
//! actor stays the erased id.

use uuid::Uuid;

use crate::{
    error::{Error, Result},
    services::{appointments, auth, media, posts, users, SharedServices},
};

/// The steps after the start, in the order they run; the record counts them.
#[derive(Clone, Copy, Debug)]
enum Step {
    Appointments,
    Posts,
    Media,
    Profile,
    Credentials,
}

const STEPS: [Step; 5] = [
    Step::Appointments,
    Step::Posts,
    Step::Media,
    Step::Profile,
    Step::Credentials,
];

/// Erases `user_id`'s account, asked for by `actor` (who may be an admin or the user
/// themself: the resolver's guard and this check together). An id that never had an
/// account is `NOT_FOUND`; one already erased answers true again (the caller may not
/// have heard the first answer). Erasing the last active admin is `CONFLICT`.
pub(crate) async fn delete_user(
    services: &SharedServices,
    actor: &auth::Viewer,
    user_id: Uuid,
) -> Result<bool> {
    if actor.user_id != user_id && !actor.is_admin() {
        return Err(Error::Forbidden(
            "only an admin may erase another account".into(),
        ));
    }
    match auth::erasure::begin(services, user_id, actor.user_id).await? {
        auth::erasure::Standing::Finished => Ok(true),
        auth::erasure::Standing::Pending { steps_done } => {
            run(services.clone(), user_id, steps_done).await?;
            Ok(true)
        }
    }
}

/// Finishes every erasure a failure or a crash left half-way; the housekeeping calls it
/// at start and every five minutes. Safe on every replica at once (each step is
/// idempotent). Returns how many it finished.
pub(crate) async fn resume_pending(services: &SharedServices) -> Result<usize> {
    let mut finished = 0;
    for (user_id, steps_done) in auth::erasure::pending(&services.stores.auth).await? {
        match run(services.clone(), user_id, steps_done).await {
            Ok(()) => finished += 1,
            Err(e) => tracing::warn!(user = %user_id, error = %e, "resuming an erasure failed"),
        }
    }
    Ok(finished)
}

/// Runs the steps after the first `steps_done`, in a task of its own: a client that goes
/// away cannot stop an erasure between two steps.
async fn run(services: SharedServices, user_id: Uuid, steps_done: i32) -> Result<()> {
    crate::telemetry::spawn(async move {
        let skip = usize::try_from(steps_done).unwrap_or(0);
        // Until their steps run, what is left hides with the suspended account: the
        // coach leaves the directory, the posts leave the feed.
        if skip < 4 {
            users::listing::sync(services.clone(), user_id).await?;
        }
        if skip < 2 {
            posts::hiding::sync(services.clone(), user_id).await?;
        }
        for (index, step) in STEPS.iter().enumerate().skip(skip) {
            let done = i32::try_from(index + 1).unwrap_or(i32::MAX);
            match step {
                Step::Appointments => {
                    appointments::booking::erase(&services, user_id).await?;
                }
                Step::Posts => posts::erasure::erase(&services.stores.posts, user_id).await?,
                Step::Media => {
                    media::erase_owner(&services, user_id).await?;
                }
                Step::Profile => users::profiles::erase(&services.stores.users, user_id).await?,
                Step::Credentials => {
                    // Closes the record in the same transaction.
                    auth::erasure::finish(&services, user_id, done).await?;
                    continue;
                }
            }
            auth::erasure::steps_done(&services.stores.auth, user_id, done).await?;
        }
        Ok(())
    })
    .await
    .map_err(Error::internal)?
}
