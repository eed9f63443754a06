//! The Query, Mutation and Subscription roots, one part per domain, merged. Each part's
//! fields declare who may call them (guards), so the roots read as the API's access rules.

mod admin;
mod appointments;
mod auth;
mod health;
mod media;
mod posts;
mod users;

use async_graphql::{MergedObject, MergedSubscription, Schema};

/// The schema these roots make; assembled in `crate::build`.
pub(crate) type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub(crate) struct QueryRoot(
    health::HealthQuery,
    auth::AuthQuery,
    users::UsersQuery,
    media::MediaQuery,
    appointments::AppointmentsQuery,
    posts::PostsQuery,
    admin::AdminQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub(crate) struct MutationRoot(
    auth::AuthMutation,
    users::UsersMutation,
    media::MediaMutation,
    posts::PostsMutation,
    admin::AdminMutation,
    appointments::AppointmentsMutation,
);

#[derive(MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub(crate) struct SubscriptionRoot(
    health::HealthSubscription,
    appointments::AppointmentsSubscription,
);
