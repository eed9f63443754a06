//! The admin account list (`users`): accounts live in auth_db, display names in user_db,
//! and no statement joins the two. A search first asks user_db for the ids whose name
//! matches, then pages auth_db by (created_at, id) over "email matches OR id is one of
//! those".

use crate::{
    db::auth::user as account,
    error::{Error, Result},
    services::{
        auth::{
            admin::{self, AccountFilter},
            Role,
        },
        page::Page,
        text,
        users::directory,
        SharedServices,
    },
};

/// Longest accepted `search` term.
const SEARCH_MAX: usize = 100;
/// Most display names one search may match: their ids travel to auth_db as a list, which
/// must stay well within what either database binds in one statement. A broader term is
/// refused with a request to narrow it, rather than answered incompletely.
const NAME_MATCHES_MAX: u64 = 5_000;

pub(crate) async fn list(
    services: &SharedServices,
    search: Option<String>,
    role: Option<Role>,
    page: &Page,
) -> Result<(Vec<account::Model>, i64)> {
    let mut filter = AccountFilter {
        role,
        ..AccountFilter::default()
    };
    if let Some(term) = search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let term = text::bounded("search", term, 1, SEARCH_MAX)?;
        let folded = text::search_text(&[&term]);
        let ids =
            directory::ids_matching_name(&services.stores.users, &folded, NAME_MATCHES_MAX + 1)
                .await?;
        if ids.len() as u64 > NAME_MATCHES_MAX {
            return Err(Error::bad_input(
                "search",
                "search matches too many names: narrow it",
            ));
        }
        // Emails are stored lower-cased; the folded term also finds one typed without
        // its accents.
        filter.email_pattern = Some(text::contains_pattern(&folded));
        filter.or_ids = ids;
    }
    admin::list(&services.stores.auth, filter, page).await
}
