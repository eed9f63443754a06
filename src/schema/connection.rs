//! Relay connections over keyset pages ([`crate::services::page`]): `edges`, `nodes`,
//! `pageInfo` and `totalCount`, as every list of the API answers them.

use async_graphql::{
    connection::{Connection, Edge, EmptyFields},
    SimpleObject,
};

use crate::services::page::{Cursor, Page};

#[derive(SimpleObject)]
pub(crate) struct ConnectionTotal {
    /// How many items the whole list holds, across every page.
    pub(crate) total_count: i64,
}

pub(crate) type Conn<N> = Connection<String, N, ConnectionTotal, EmptyFields>;

/// Builds the connection of `page` from up to `page.limit()` rows, each with its cursor
/// position; the extra row only tells that another page follows.
pub(crate) fn connection<N: async_graphql::OutputType>(
    page: &Page,
    mut rows: Vec<(Cursor, N)>,
    total: i64,
) -> Conn<N> {
    let has_next = rows.len() as u64 > page.first;
    rows.truncate(page.first as usize);
    let mut conn = Connection::with_additional_fields(
        page.after.is_some(),
        has_next,
        ConnectionTotal { total_count: total },
    );
    conn.edges.extend(
        rows.into_iter()
            .map(|(cursor, node)| Edge::new(cursor.encode(), node)),
    );
    conn
}
