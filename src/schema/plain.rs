//! Answers a subtree whose data is already in memory without a future per field.
//!
//! async-graphql resolves every field of an `#[Object]` as its own boxed future, joined per
//! object, with its name looked up and its value moved through several layers. A feed
//! page is a thousand such fields whose values are all loaded before the first one runs
//! (`schema::posts::load` preloads the page), and that machinery was most of the server's
//! CPU per feed (BENCHMARKS.md). [`Plain`] walks the selection set instead and builds the
//! same `Value` the library would build, field by field, synchronously.
//!
//! The walk answers only what it can answer exactly as the `#[Object]` resolvers do, from
//! what was preloaded: any field it does not know or any part not preloaded makes the
//! whole value fall back to the library's resolution ([`Fast`]). A response key selected
//! twice merges as the library merges it. So the walk never changes an answer; it only
//! skips work. Errors never come out of it: a field that could fail is a field it leaves
//! to the library.

use std::{
    borrow::Cow,
    sync::atomic::{AtomicU64, Ordering},
};

use async_graphql::{
    connection::{Connection, CursorType, Edge, EmptyFields},
    indexmap::{self, IndexMap},
    parser::types::{Field, Selection, SelectionSet},
    registry::Registry,
    ContextSelectionSet, Name, OutputType, Positioned, ScalarType, ServerResult, Value,
};

use super::connection::ConnectionTotal;
use crate::services::SharedServices;

/// What a walk may read besides the values themselves.
pub(crate) struct Walk<'a> {
    pub(crate) services: &'a SharedServices,
}

/// One selected field, read straight from the document: its response key is the
/// document's own `Name` (shared, not copied), and fragments are followed as the library
/// follows them (a valid document's type conditions on these object types always hold).
#[derive(Clone, Copy)]
pub(crate) struct Sel<'a> {
    ctx: &'a ContextSelectionSet<'a>,
    field: &'a Positioned<Field>,
}

impl<'a> Sel<'a> {
    /// The field's name in the schema (not its alias).
    pub(crate) fn name(&self) -> &'a str {
        self.field.node.name.node.as_str()
    }

    fn key(&self) -> Name {
        self.field.node.response_key().node.clone()
    }

    /// Calls `each` with every field selected below this one, in document order, until
    /// one answers `None`.
    fn children(&self, each: &mut impl FnMut(Sel<'a>) -> Option<()>) -> Option<()> {
        self.within(&self.field.node.selection_set.node, each)
    }

    fn within(
        &self,
        set: &'a SelectionSet,
        each: &mut impl FnMut(Sel<'a>) -> Option<()>,
    ) -> Option<()> {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => each(Sel {
                    ctx: self.ctx,
                    field,
                })?,
                Selection::FragmentSpread(spread) => {
                    let fragment = self
                        .ctx
                        .query_env
                        .fragments
                        .get(&spread.node.fragment_name.node)?;
                    self.within(&fragment.node.selection_set.node, each)?;
                }
                Selection::InlineFragment(inline) => {
                    self.within(&inline.node.selection_set.node, each)?;
                }
            }
        }
        Some(())
    }

    /// The `first` and `after` arguments of a connection field, read as the resolvers
    /// read them (variables, defaults); `None` when they would not read.
    pub(crate) fn page_arguments(&self) -> Option<(Option<i32>, Option<String>)> {
        let ctx = self.ctx.with_field(self.field);
        let (_, first) = ctx.param_value::<Option<i32>>("first", None).ok()?;
        let (_, after) = ctx.param_value::<Option<String>>("after", None).ok()?;
        Some((first, after))
    }
}

/// A value whose selected fields can be answered from memory.
pub(crate) trait Plain {
    /// The GraphQL type's name, for `__typename`.
    fn typename(&self) -> Cow<'static, str>;

    /// The value of one selected field (not `__typename`), or `None` when it cannot be
    /// answered here exactly as the type's resolver would answer it.
    fn field(&self, walk: &Walk<'_>, field: Sel<'_>) -> Option<Value>;
}

/// Room for the fields of one object, so that its map is not regrown field by field.
const FIELDS: usize = 8;

/// The object `value` answers for the selection set of `field`.
pub(crate) fn object<T: Plain + ?Sized>(
    walk: &Walk<'_>,
    value: &T,
    field: Sel<'_>,
) -> Option<Value> {
    let mut map = IndexMap::with_capacity(FIELDS);
    field.children(&mut |child| {
        let v = match child.name() {
            "__typename" => Value::String(value.typename().into_owned()),
            _ => value.field(walk, child)?,
        };
        insert(&mut map, child.key(), v);
        Some(())
    })?;
    Some(Value::Object(map))
}

/// Adds one field's value under its response key. A key selected twice (`id` and a
/// fragment's `id`; `author { id }` and `author { profile … }`) merges as the library
/// merges it: objects key by key, lists of objects item by item, the first scalar kept.
fn insert(target: &mut IndexMap<Name, Value>, name: Name, value: Value) {
    // One hash of the key, whether it is new (nearly always) or selected again.
    let prev = match target.entry(name) {
        indexmap::map::Entry::Vacant(slot) => {
            slot.insert(value);
            return;
        }
        indexmap::map::Entry::Occupied(slot) => slot.into_mut(),
    };
    match (prev, value) {
        (Value::Object(into), Value::Object(from)) => {
            for (k, v) in from {
                insert(into, k, v);
            }
        }
        (Value::List(into), Value::List(from)) => {
            for (slot, v) in into.iter_mut().zip(from) {
                if let (Value::Object(into), Value::Object(from)) = (slot, v) {
                    for (k, v) in from {
                        insert(into, k, v);
                    }
                }
            }
        }
        _ => {}
    }
}

/// A list of objects.
pub(crate) fn list<'v, T: Plain + 'v>(
    walk: &Walk<'_>,
    items: impl IntoIterator<Item = &'v T>,
    field: Sel<'_>,
) -> Option<Value> {
    items
        .into_iter()
        .map(|item| object(walk, item, field))
        .collect::<Option<Vec<_>>>()
        .map(Value::List)
}

/// A scalar as its `ScalarType` writes it (ids, dates).
pub(crate) fn scalar<S: ScalarType>(value: S) -> Value {
    value.to_value()
}

/// An optional object: `null` when absent.
pub(crate) fn nullable<T: Plain>(
    walk: &Walk<'_>,
    value: Option<&T>,
    field: Sel<'_>,
) -> Option<Value> {
    match value {
        Some(v) => object(walk, v, field),
        None => Some(Value::Null),
    }
}

impl<T: Plain + ?Sized> Plain for &T {
    fn typename(&self) -> Cow<'static, str> {
        (**self).typename()
    }

    fn field(&self, walk: &Walk<'_>, field: Sel<'_>) -> Option<Value> {
        (**self).field(walk, field)
    }
}

impl<N: Plain + OutputType> Plain for Connection<String, N, ConnectionTotal, EmptyFields> {
    fn typename(&self) -> Cow<'static, str> {
        <Self as OutputType>::type_name()
    }

    fn field(&self, walk: &Walk<'_>, field: Sel<'_>) -> Option<Value> {
        match field.name() {
            "edges" => list(walk, &self.edges, field),
            "nodes" => list(walk, self.edges.iter().map(|e| &e.node), field),
            "totalCount" => Some(Value::from(self.additional_fields.total_count)),
            "pageInfo" => {
                let info = PageInfoView {
                    has_previous_page: self.has_previous_page,
                    has_next_page: self.has_next_page,
                    start_cursor: self.edges.first().map(|e| &e.cursor),
                    end_cursor: self.edges.last().map(|e| &e.cursor),
                };
                object(walk, &info, field)
            }
            _ => None,
        }
    }
}

impl<N: Plain + OutputType> Plain for Edge<String, N, EmptyFields> {
    fn typename(&self) -> Cow<'static, str> {
        Cow::Owned(format!("{}Edge", <N as OutputType>::type_name()))
    }

    fn field(&self, walk: &Walk<'_>, field: Sel<'_>) -> Option<Value> {
        match field.name() {
            "cursor" => Some(Value::String(self.cursor.encode_cursor())),
            "node" => object(walk, &self.node, field),
            _ => None,
        }
    }
}

/// A connection's `pageInfo`, borrowed for a walk.
struct PageInfoView<'a> {
    has_previous_page: bool,
    has_next_page: bool,
    start_cursor: Option<&'a String>,
    end_cursor: Option<&'a String>,
}

impl Plain for PageInfoView<'_> {
    fn typename(&self) -> Cow<'static, str> {
        Cow::Borrowed("PageInfo")
    }

    fn field(&self, _: &Walk<'_>, field: Sel<'_>) -> Option<Value> {
        let cursor =
            |c: Option<&String>| c.map_or(Value::Null, |c| Value::String(c.encode_cursor()));
        Some(match field.name() {
            "hasPreviousPage" => Value::Boolean(self.has_previous_page),
            "hasNextPage" => Value::Boolean(self.has_next_page),
            "startCursor" => cursor(self.start_cursor),
            "endCursor" => cursor(self.end_cursor),
            _ => return None,
        })
    }
}

/// How many values [`Fast`] answered by a walk and how many it left to the library: how
/// often the fast path applies, on `/metrics`.
#[derive(Default)]
pub(crate) struct WalkStats {
    pub(crate) walked: AtomicU64,
    pub(crate) resolved: AtomicU64,
}

/// `T` as the schema knows it, answered by a walk when the selection allows one and by
/// the library otherwise. The schema sees `T` itself: same name, same type information.
pub(crate) struct Fast<T>(pub(crate) T);

impl<T> OutputType for Fast<T>
where
    T: OutputType + Plain,
{
    fn type_name() -> Cow<'static, str> {
        <T as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let walked = ctx
            .data_opt::<SharedServices>()
            .and_then(|services| object(&Walk { services }, &self.0, Sel { ctx, field }));
        let stats = ctx.data_opt::<std::sync::Arc<WalkStats>>();
        match walked {
            Some(value) => {
                if let Some(stats) = stats {
                    stats.walked.fetch_add(1, Ordering::Relaxed);
                }
                Ok(value)
            }
            None => {
                if let Some(stats) = stats {
                    stats.resolved.fetch_add(1, Ordering::Relaxed);
                }
                self.0.resolve(ctx, field).await
            }
        }
    }
}
