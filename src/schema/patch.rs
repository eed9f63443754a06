//! Update arguments arrive as `MaybeUndefined` (absent, null, or a value, as the request's
//! variables decide: see [`super::variables`]); the services take them as their own
//! [`Patch`], which knows nothing of GraphQL.

use async_graphql::MaybeUndefined;

use crate::services::patch::Patch;

impl<T> From<MaybeUndefined<T>> for Patch<T> {
    fn from(value: MaybeUndefined<T>) -> Self {
        match value {
            MaybeUndefined::Undefined => Patch::Keep,
            MaybeUndefined::Null => Patch::Clear,
            MaybeUndefined::Value(v) => Patch::Set(v),
        }
    }
}
