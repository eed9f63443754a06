//! What every resolver reads from its context: the shared services and the request's own
//! facts (who calls, from where, and what the audit trail should say of it).

use std::sync::Mutex;

use async_graphql::Context;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    services::{
        auth::{sessions::ClientInfo, Auth, Viewer},
        SharedServices,
    },
};

/// Per-request data, inserted by the HTTP and websocket handlers.
pub(crate) struct RequestContext {
    pub(crate) auth: Auth,
    pub(crate) client: ClientInfo,
    /// What the mutation being resolved names as its target, for the audit trail.
    pub(crate) audit: Mutex<AuditTarget>,
}

impl RequestContext {
    pub(crate) fn new(auth: Auth, client: ClientInfo) -> RequestContext {
        RequestContext {
            auth,
            client,
            audit: Mutex::new(AuditTarget::default()),
        }
    }
}

/// Set by a mutation resolver: the object it acted on, and the actor when the request
/// had none yet (`register`, `login`).
#[derive(Clone, Debug, Default)]
pub(crate) struct AuditTarget {
    pub(crate) target_type: Option<&'static str>,
    pub(crate) target_id: Option<String>,
    pub(crate) actor_id: Option<Uuid>,
    pub(crate) details: Option<String>,
}

pub(crate) trait ContextExt {
    fn services(&self) -> Result<&SharedServices>;
    fn request(&self) -> Result<&RequestContext>;
    /// The authenticated caller, or `UNAUTHENTICATED`.
    fn viewer(&self) -> Result<&Viewer> {
        self.request()?.auth.viewer()
    }
    /// The caller if authenticated; `None` when anonymous.
    fn optional_viewer(&self) -> Result<Option<&Viewer>> {
        self.request()?.auth.optional_viewer()
    }
    /// Names what this mutation acts on, for the audit trail.
    fn audit_target(&self, target_type: &'static str, target_id: impl ToString) {
        if let Ok(req) = self.request() {
            if let Ok(mut slot) = req.audit.lock() {
                slot.target_type = Some(target_type);
                slot.target_id = Some(target_id.to_string());
            }
        }
    }
    /// Names the actor when the request was anonymous (a login or a registration).
    fn audit_actor(&self, actor: Uuid) {
        if let Ok(req) = self.request() {
            if let Ok(mut slot) = req.audit.lock() {
                slot.actor_id = Some(actor);
            }
        }
    }
    /// A short note for the audit trail (never a secret).
    fn audit_details(&self, details: impl Into<String>) {
        if let Ok(req) = self.request() {
            if let Ok(mut slot) = req.audit.lock() {
                slot.details = Some(details.into());
            }
        }
    }
}

impl ContextExt for Context<'_> {
    fn services(&self) -> Result<&SharedServices> {
        self.data::<SharedServices>()
            .map_err(|_| Error::internal(anyhow::anyhow!("services missing from the schema data")))
    }

    fn request(&self) -> Result<&RequestContext> {
        self.data::<RequestContext>()
            .map_err(|_| Error::internal(anyhow::anyhow!("request context missing")))
    }
}
