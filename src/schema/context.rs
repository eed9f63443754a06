//! What every resolver reads from its context: the shared services and the request's own
//! facts (who calls, from where), and how a mutation tells the audit trail what it did.

use async_graphql::Context;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    services::{
        audit_outbox,
        auth::{sessions::ClientInfo, Auth, Viewer},
        SharedServices,
    },
};

/// Per-request data, inserted by the HTTP and websocket handlers.
pub(crate) struct RequestContext {
    pub(crate) auth: Auth,
    pub(crate) client: ClientInfo,
}

impl RequestContext {
    pub(crate) fn new(auth: Auth, client: ClientInfo) -> RequestContext {
        RequestContext { auth, client }
    }
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
    /// Names what this mutation acts on, for the audit trail (the mutation's pending
    /// entry: `services::audit_outbox`).
    fn audit_target(&self, target_type: &'static str, target_id: impl ToString) {
        audit_outbox::note_target(target_type, target_id.to_string());
    }
    /// Names the actor when the request was anonymous (a login, a registration).
    fn audit_actor(&self, actor: Uuid) {
        audit_outbox::note_actor(actor);
    }
    /// A small JSON object for the audit trail (never a secret), stored as its text.
    fn audit_details(&self, details: serde_json::Value) {
        audit_outbox::note_details(details.to_string());
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
