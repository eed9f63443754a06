//! The posts domain (post_db): coaches' posts with up to four images, likes and comments,
//! the feed and each author's posts. Only this module names post_db's tables; it reads
//! accounts through [`crate::services::auth`] and claims images through
//! [`crate::services::media`].
//!
//! Who may change a row is decided where the row is loaded: a post by its author or an
//! admin, a comment by its author, the post's author or an admin.

pub(crate) mod comments;
pub(crate) mod erasure;
pub(crate) mod hiding;
pub(crate) mod likes;
pub(crate) mod read;
pub(crate) mod stats;
pub(crate) mod write;

/// Longest post body, in characters.
pub(crate) const BODY_MAX: usize = 5_000;
/// Longest comment, in characters.
pub(crate) const COMMENT_MAX: usize = 2_000;
/// Images one post may carry.
pub(crate) const MAX_MEDIA: usize = 4;
