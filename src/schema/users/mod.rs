//! The users domain's types: `User`, `UserProfile`, `CoachProfile`, `Specialty`, and the
//! loaders that fetch their parts from user_db.

mod loaders;
mod specialty;
mod user;

pub(crate) use loaders::register as register_loaders;
pub(crate) use specialty::Specialty;
pub(crate) use user::User;
