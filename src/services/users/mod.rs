//! The users domain (user_db): public profiles, coach profiles, the coach directory and
//! the specialty catalogue. Only this module names user_db's tables; the auth domain
//! creates and erases profiles through it, and it reads accounts through
//! [`crate::services::auth`].

pub(crate) mod coaching;
pub(crate) mod directory;
pub(crate) mod listing;
pub(crate) mod profiles;
pub(crate) mod rules;
