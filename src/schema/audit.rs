//! Two rules that hold for every root field, kept in one extension so no resolver can
//! forget them:
//!
//! - credentials that were sent but do not hold refuse every operation with
//!   `UNAUTHENTICATED`, except those that exist to obtain new credentials;
//! - every mutation leaves an audit entry (actor, action, target, outcome, client
//!   address), whether it succeeded or not.

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
    services::{admin::audit, auth::Auth, SharedServices},
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
                    write(ctx, info.name, info.return_type, request, "UNAUTHENTICATED").await;
                }
                return Err(err);
            }
        }
        if info.parent_type != "Mutation" {
            return next.run(ctx, info).await;
        }
        if let Some(mut slot) = request.and_then(|r| r.audit.lock().ok()) {
            *slot = Default::default();
        }
        let name = info.name;
        let return_type = info.return_type;
        let result = next.run(ctx, info).await;
        let outcome = match &result {
            Ok(_) => "success".to_string(),
            Err(e) => code_of(e).unwrap_or("INTERNAL_SERVER_ERROR").to_string(),
        };
        write(ctx, name, return_type, request, &outcome).await;
        result
    }
}

/// Writes the audit row of one mutation: the actor is the request's user, else the one
/// the resolver named (a login, a registration); the target is what the resolver named,
/// else the mutation's return type.
async fn write(
    ctx: &ExtensionContext<'_>,
    action: &str,
    return_type: &str,
    request: Option<&RequestContext>,
    outcome: &str,
) {
    let Some(services) = ctx.data_opt::<SharedServices>() else {
        return;
    };
    let slot = request
        .and_then(|r| r.audit.lock().ok().map(|s| s.clone()))
        .unwrap_or_default();
    let actor_id = match request.map(|r| &r.auth) {
        Some(Auth::User(v)) => Some(v.user_id),
        _ => slot.actor_id,
    };
    let fallback_type = return_type.trim_matches(|c| c == '[' || c == ']' || c == '!');
    audit::record(
        &services.stores.admin,
        &services.stores.auth,
        audit::Entry {
            actor_id,
            action: action.to_string(),
            target_type: slot.target_type.unwrap_or(fallback_type).to_string(),
            target_id: slot.target_id,
            outcome: outcome.to_string(),
            ip: request.and_then(|r| r.client.ip.clone()),
            details: slot.details,
        },
    )
    .await;
}
