//! The admin domain (admin_db): the audit trail and the WARN/ERROR log store, and the
//! administration reads (statistics across every store, the account list). Only this
//! module names admin_db's tables; counts of other databases come from their domains.

pub(crate) mod accounts;
pub(crate) mod audit;
pub(crate) mod erasure;
pub(crate) mod logs;
pub(crate) mod stats;
