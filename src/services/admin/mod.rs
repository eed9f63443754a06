//! The admin domain (admin_db): the audit trail today; statistics and the log store come
//! with the administration work. Only this module names admin_db's tables.

pub(crate) mod audit;
pub(crate) mod erasure;
