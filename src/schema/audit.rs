//! Two rules that hold for every root field, kept in one extension so no resolver can
//! forget them:
//!
//! - credentials that were sent but do not hold refuse every operation with
//!   `UNAUTHENTICATED`, except those that exist to obtain new credentials;
//! - every mutation leaves exactly one audit entry (actor, action, target, outcome,
//!   client address), whether it succeeded or not.
//!
//! The entry is opened before the resolver runs, with its id, and the resolver runs
//! inside it: a service whose change is a SQL transaction stages the entry in that
//! transaction (`services::audit_outbox`), so a change never commits without it. When the
//! resolver has answered, the final entry (same id, the real outcome) goes to admin_db
//! and replaces the staged one (`services::admin::audit::settle`). A mutation that
//! staged nothing (refused, media in GridFS or files, a change with no transaction of its
//! own) gets its entry then, after the fact, as before.
//!
//! Which outcome wins when the resolver fails after its change committed (a read of the
//! answer, a follow-up sync): the final one, the error code the caller was answered, as
//! for any other entry; the entry keeps the staged id and target, so the change it names
//! can still be found. (A transaction that rolls back after staging takes its staged row
//! with it, but the entry still names the target it staged: the id the change would have
//! had.) Only when the process dies before settling does the staged `success` stay, and
//! then the change did commit.

use std::sync::Arc;

use async_graphql::{
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo},
    PathSegment, ServerError, ServerResult, Value,
};

use super::{
    context::RequestContext,
    errors::{code_of, placeless},
};
use crate::{
    error::Error,
    services::{
        admin::audit,
        audit_outbox::{self, Pending},
        auth::Auth,
        SharedServices,
    },
};

/// Root fields that ignore the `Authorization` header: they are how a client with a bad
/// or expired token gets a good one. `logout` checks the header itself, since it accepts
/// a refresh token instead.
const IGNORE_CREDENTIALS: [&str; 4] = ["register", "login", "refreshToken", "logout"];

pub(crate) struct AuthGateAndAudit;

impl ExtensionFactory for AuthGateAndAudit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AuthGateAndAudit)
    }
}

fn root_error(info: &ResolveInfo<'_>, err: Error) -> ServerError {
    let mut e = placeless(err);
    e.path = vec![PathSegment::Field(
        info.alias.unwrap_or(info.name).to_string(),
    )];
    e
}

#[async_trait::async_trait]
impl Extension for AuthGateAndAudit {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some() || info.is_for_introspection {
            return next.run(ctx, info).await;
        }
        let request = ctx.data_opt::<RequestContext>();
        if let Some(RequestContext {
            auth: Auth::Invalid(reason),
            ..
        }) = request
        {
            if !IGNORE_CREDENTIALS.contains(&info.name) {
                let err = root_error(&info, Error::Unauthenticated(reason.clone()));
                if info.parent_type == "Mutation" {
                    refused(ctx, info.name, info.return_type, request, "UNAUTHENTICATED").await;
                }
                return Err(err);
            }
        }
        if info.parent_type != "Mutation" {
            return next.run(ctx, info).await;
        }
        let actor = match request.map(|r| &r.auth) {
            Some(Auth::User(v)) => Some(v.user_id),
            _ => None,
        };
        let pending = Pending::new(info.name, actor, request.and_then(|r| r.client.ip.clone()));
        let return_type = info.return_type;
        let result = pending.scope(next.run(ctx, info)).await;
        let outcome = match &result {
            Ok(_) => audit_outbox::SUCCESS,
            Err(e) => code_of(e).unwrap_or("INTERNAL_SERVER_ERROR"),
        };
        if let Some(services) = ctx.data_opt::<SharedServices>() {
            let draft = pending.draft();
            let entry = draft.entry(outcome, target_of(return_type));
            audit::settle(&services.stores, entry, &draft.staged).await;
        }
        result
    }
}

/// The target type when the resolver named none: the mutation's return type.
fn target_of(return_type: &str) -> &str {
    return_type.trim_matches(|c| c == '[' || c == ']' || c == '!')
}

/// Writes the entry of a mutation refused before its resolver ran: the actor is the
/// request's user, the target the mutation's return type.
async fn refused(
    ctx: &ExtensionContext<'_>,
    action: &str,
    return_type: &str,
    request: Option<&RequestContext>,
    outcome: &str,
) {
    let Some(services) = ctx.data_opt::<SharedServices>() else {
        return;
    };
    let actor_id = match request.map(|r| &r.auth) {
        Some(Auth::User(v)) => Some(v.user_id),
        _ => None,
    };
    audit::record(
        &services.stores,
        audit::Entry {
            actor_id,
            action: action.to_string(),
            target_type: target_of(return_type).to_string(),
            target_id: None,
            outcome: outcome.to_string(),
            ip: request.and_then(|r| r.client.ip.clone()),
            details: None,
        },
    )
    .await;
}
