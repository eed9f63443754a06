//! Answers a subtree whose data is already in memory without a future per field, and
//! writes it as JSON text rather than as a tree of values.
//!
//! async-graphql resolves every field of an `#[Object]` as its own boxed future, joined per
//! object, with its name looked up and its value moved through several layers, into a
//! `Value` tree that is then serialised. A feed page is a thousand such fields whose
//! values are all loaded before the first one runs (`schema::posts::load` preloads the
//! page), and that machinery was most of the server's CPU per feed (BENCHMARKS.md).
//! [`Plain`] walks the selection set instead, synchronously, and writes each field's JSON
//! straight into one buffer ([`Out`]).
//!
//! The selection is first merged as GraphQL executes it ([`Node`]): fragments followed,
//! and the fields selected under one response key (`id` and a fragment's `id`; `author {
//! id }` and `author { profile … }`) answered once with their selections combined, keys
//! in the order they first appear. That is what the library's own merge of values
//! produces for a valid document, so the text is the one the resolvers would give.
//!
//! The walk answers only what it can answer exactly as the `#[Object]` resolvers do, from
//! what was preloaded: any field it does not know or any part not preloaded makes the
//! whole value fall back to the library's resolution ([`Fast`]). So the walk never changes
//! an answer; it only skips work. Errors never come out of it: a field that could fail is
//! a field it leaves to the library.
//!
//! The text reaches the response in one of two ways. Over HTTP, whose handler writes the
//! response itself ([`write_value`]), it travels inside the `Value` as
//! `Value::Binary` and is copied into the body as it is (no output type of this schema
//! produces bytes, so nothing else takes that form). Elsewhere (a subscription's
//! connection, which serialises with the library), or when the field's response key is
//! selected twice in the document and the library must merge the two values, it is read
//! back into a `Value`.

use std::{
    borrow::Cow,
    sync::atomic::{AtomicU64, Ordering},
};

use async_graphql::{
    connection::{Connection, Edge, EmptyFields},
    parser::types::{Field, Selection, SelectionSet},
    registry::Registry,
    ContextSelectionSet, OutputType, Positioned, ServerResult, Value,
};
use chrono::{DateTime, Datelike, Timelike, Utc};
use uuid::Uuid;

use super::connection::ConnectionTotal;
use crate::services::SharedServices;

/// What a walk may read besides the values themselves.
pub(crate) struct Walk<'a> {
    pub(crate) services: &'a SharedServices,
}

/// One response key of a selection set and what is selected under it, merged.
pub(crate) struct Node<'a> {
    key: &'a str,
    /// The first field selected under the key: its name and arguments (the fields a
    /// valid document selects under one key share both).
    field: &'a Positioned<Field>,
    children: Vec<Node<'a>>,
}

impl<'a> Node<'a> {
    /// The merged selection of `field`; `None` when a fragment it names is missing
    /// (never, in a validated document).
    fn plan(ctx: &'a ContextSelectionSet<'a>, field: &'a Positioned<Field>) -> Option<Self> {
        Some(Node {
            key: field.node.response_key().node.as_str(),
            field,
            children: merged(ctx, &[&field.node.selection_set.node])?,
        })
    }
}

/// The fields of `sets`, fragments followed, one node per response key in the order the
/// keys first appear, each with the selections of every field under its key.
fn merged<'a>(
    ctx: &'a ContextSelectionSet<'a>,
    sets: &[&'a SelectionSet],
) -> Option<Vec<Node<'a>>> {
    let mut keys: Vec<(&'a Positioned<Field>, Vec<&'a SelectionSet>)> = Vec::new();
    for set in sets {
        gather(ctx, set, &mut keys)?;
    }
    keys.into_iter()
        .map(|(field, sets)| {
            let children = if sets.iter().all(|s| s.items.is_empty()) {
                Vec::new()
            } else {
                merged(ctx, &sets)?
            };
            Some(Node {
                key: field.node.response_key().node.as_str(),
                field,
                children,
            })
        })
        .collect()
}

fn gather<'a>(
    ctx: &'a ContextSelectionSet<'a>,
    set: &'a SelectionSet,
    keys: &mut Vec<(&'a Positioned<Field>, Vec<&'a SelectionSet>)>,
) -> Option<()> {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.as_str();
                let sub = &field.node.selection_set.node;
                match keys
                    .iter_mut()
                    .find(|(f, _)| f.node.response_key().node.as_str() == key)
                {
                    Some((_, sets)) => sets.push(sub),
                    None => keys.push((field, vec![sub])),
                }
            }
            Selection::FragmentSpread(spread) => {
                let fragment = ctx
                    .query_env
                    .fragments
                    .get(&spread.node.fragment_name.node)?;
                gather(ctx, &fragment.node.selection_set.node, keys)?;
            }
            Selection::InlineFragment(inline) => {
                // A valid document's type conditions on these object types always hold.
                gather(ctx, &inline.node.selection_set.node, keys)?;
            }
        }
    }
    Some(())
}

/// One selected field (all the fields selected under its response key, merged).
#[derive(Clone, Copy)]
pub(crate) struct Sel<'a> {
    ctx: &'a ContextSelectionSet<'a>,
    node: &'a Node<'a>,
}

impl<'a> Sel<'a> {
    /// The field's name in the schema (not its alias).
    pub(crate) fn name(&self) -> &'a str {
        self.node.field.node.name.node.as_str()
    }

    /// The `first` and `after` arguments of a connection field, read as the resolvers
    /// read them (variables, defaults); `None` when they would not read.
    pub(crate) fn page_arguments(&self) -> Option<(Option<i32>, Option<String>)> {
        let ctx = self.ctx.with_field(self.node.field);
        let (_, first) = ctx.param_value::<Option<i32>>("first", None).ok()?;
        let (_, after) = ctx.param_value::<Option<String>>("after", None).ok()?;
        Some((first, after))
    }
}

/// A value whose selected fields can be answered from memory.
pub(crate) trait Plain {
    /// The GraphQL type's name, for `__typename`.
    fn typename(&self) -> Cow<'static, str>;

    /// Writes the value of one selected field (not `__typename`), or answers `None`
    /// when it cannot be answered here exactly as the type's resolver would answer it
    /// (what was written is then thrown away with the rest of the walk).
    fn field(&self, walk: &Walk<'_>, field: Sel<'_>, out: &mut Out) -> Option<()>;
}

/// The JSON text of a walk.
#[derive(Default)]
pub(crate) struct Out(Vec<u8>);

impl Out {
    pub(crate) fn null(&mut self) {
        self.0.extend_from_slice(b"null");
    }

    pub(crate) fn bool(&mut self, value: bool) {
        self.0
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    pub(crate) fn int(&mut self, value: i64) {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.0, &value);
    }

    /// A string, escaped as `serde_json` escapes it.
    pub(crate) fn str(&mut self, value: &str) {
        escaped(&mut self.0, value);
    }

    /// An id as the `ID` scalar writes it (a UUID, hyphenated, lower case).
    pub(crate) fn id(&mut self, id: Uuid) {
        self.0.push(b'"');
        self.0
            .extend_from_slice(super::ids::text(id, &mut Uuid::encode_buffer()).as_bytes());
        self.0.push(b'"');
    }

    /// A date as the `DateTime` scalar writes it (`to_rfc3339`: `+00:00`, and a fraction
    /// of 3, 6 or 9 digits only when the nanoseconds need it), without the formatting
    /// machinery: a feed page writes a hundred dates.
    pub(crate) fn datetime(&mut self, at: &DateTime<Utc>) {
        let (year, nanos) = (at.year(), at.nanosecond());
        if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
            // Years of other widths and leap seconds: chrono's own text.
            return self.str(&at.to_rfc3339());
        }
        let out = &mut self.0;
        out.push(b'"');
        digits(out, year as u32, 4);
        out.push(b'-');
        digits(out, at.month(), 2);
        out.push(b'-');
        digits(out, at.day(), 2);
        out.push(b'T');
        digits(out, at.hour(), 2);
        out.push(b':');
        digits(out, at.minute(), 2);
        out.push(b':');
        digits(out, at.second(), 2);
        if nanos != 0 {
            let (value, width) = if nanos % 1_000_000 == 0 {
                (nanos / 1_000_000, 3)
            } else if nanos % 1_000 == 0 {
                (nanos / 1_000, 6)
            } else {
                (nanos, 9)
            };
            out.push(b'.');
            digits(out, value, width);
        }
        out.extend_from_slice(b"+00:00\"");
    }
}

/// `value`'s last `width` decimal digits, zero-padded.
fn digits(out: &mut Vec<u8>, value: u32, width: u32) {
    for i in (0..width).rev() {
        out.push(b'0' + (value / 10u32.pow(i) % 10) as u8);
    }
}

/// `value` as a JSON string, escaped as `serde_json` escapes it.
fn escaped(out: &mut Vec<u8>, value: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

/// The object `value` answers for the selection of `field`.
pub(crate) fn object<T: Plain + ?Sized>(
    walk: &Walk<'_>,
    value: &T,
    field: Sel<'_>,
    out: &mut Out,
) -> Option<()> {
    out.0.push(b'{');
    for (i, child) in field.node.children.iter().enumerate() {
        if i > 0 {
            out.0.push(b',');
        }
        // Response keys are GraphQL names: nothing in them needs escaping.
        out.0.push(b'"');
        out.0.extend_from_slice(child.key.as_bytes());
        out.0.extend_from_slice(b"\":");
        let child = Sel {
            ctx: field.ctx,
            node: child,
        };
        match child.name() {
            "__typename" => out.str(&value.typename()),
            _ => value.field(walk, child, out)?,
        }
    }
    out.0.push(b'}');
    Some(())
}

/// A list of objects.
pub(crate) fn list<'v, T: Plain + 'v>(
    walk: &Walk<'_>,
    items: impl IntoIterator<Item = &'v T>,
    field: Sel<'_>,
    out: &mut Out,
) -> Option<()> {
    out.0.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.0.push(b',');
        }
        object(walk, item, field, out)?;
    }
    out.0.push(b']');
    Some(())
}

/// An optional object: `null` when absent.
pub(crate) fn nullable<T: Plain>(
    walk: &Walk<'_>,
    value: Option<&T>,
    field: Sel<'_>,
    out: &mut Out,
) -> Option<()> {
    match value {
        Some(v) => object(walk, v, field, out),
        None => {
            out.null();
            Some(())
        }
    }
}

impl<T: Plain + ?Sized> Plain for &T {
    fn typename(&self) -> Cow<'static, str> {
        (**self).typename()
    }

    fn field(&self, walk: &Walk<'_>, field: Sel<'_>, out: &mut Out) -> Option<()> {
        (**self).field(walk, field, out)
    }
}

impl<N: Plain + OutputType> Plain for Connection<String, N, ConnectionTotal, EmptyFields> {
    fn typename(&self) -> Cow<'static, str> {
        <Self as OutputType>::type_name()
    }

    fn field(&self, walk: &Walk<'_>, field: Sel<'_>, out: &mut Out) -> Option<()> {
        match field.name() {
            "edges" => list(walk, &self.edges, field, out),
            "nodes" => list(walk, self.edges.iter().map(|e| &e.node), field, out),
            "totalCount" => {
                out.int(self.additional_fields.total_count);
                Some(())
            }
            "pageInfo" => {
                let info = PageInfoView {
                    has_previous_page: self.has_previous_page,
                    has_next_page: self.has_next_page,
                    start_cursor: self.edges.first().map(|e| e.cursor.as_str()),
                    end_cursor: self.edges.last().map(|e| e.cursor.as_str()),
                };
                object(walk, &info, field, out)
            }
            _ => None,
        }
    }
}

// A `String` cursor is written as it is (its `encode_cursor` is the string itself).
impl<N: Plain + OutputType> Plain for Edge<String, N, EmptyFields> {
    fn typename(&self) -> Cow<'static, str> {
        Cow::Owned(format!("{}Edge", <N as OutputType>::type_name()))
    }

    fn field(&self, walk: &Walk<'_>, field: Sel<'_>, out: &mut Out) -> Option<()> {
        match field.name() {
            "cursor" => {
                out.str(&self.cursor);
                Some(())
            }
            "node" => object(walk, &self.node, field, out),
            _ => None,
        }
    }
}

/// A connection's `pageInfo`, borrowed for a walk.
struct PageInfoView<'a> {
    has_previous_page: bool,
    has_next_page: bool,
    start_cursor: Option<&'a str>,
    end_cursor: Option<&'a str>,
}

impl Plain for PageInfoView<'_> {
    fn typename(&self) -> Cow<'static, str> {
        Cow::Borrowed("PageInfo")
    }

    fn field(&self, _: &Walk<'_>, field: Sel<'_>, out: &mut Out) -> Option<()> {
        let cursor = |out: &mut Out, c: Option<&str>| match c {
            Some(c) => out.str(c),
            None => out.null(),
        };
        match field.name() {
            "hasPreviousPage" => out.bool(self.has_previous_page),
            "hasNextPage" => out.bool(self.has_next_page),
            "startCursor" => cursor(out, self.start_cursor),
            "endCursor" => cursor(out, self.end_cursor),
            _ => return None,
        }
        Some(())
    }
}

/// How many values [`Fast`] answered by a walk and how many it left to the library: how
/// often the fast path applies, on `/metrics`.
#[derive(Default)]
pub(crate) struct WalkStats {
    pub(crate) walked: AtomicU64,
    pub(crate) resolved: AtomicU64,
}

/// In a request's data: its response is written by [`write_value`], so a walk's text
/// may travel in the response's `Value` as it is.
pub(crate) struct WritesRawJson;

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
        let walked = ctx.data_opt::<SharedServices>().and_then(|services| {
            let plan = Node::plan(ctx, field)?;
            let mut out = Out(Vec::with_capacity(4096));
            object(
                &Walk { services },
                &self.0,
                Sel { ctx, node: &plan },
                &mut out,
            )?;
            as_value(ctx, field, out.0)
        });
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

/// The walk's text for `field` as the response carries it (see the module's
/// documentation).
fn as_value(
    ctx: &ContextSelectionSet<'_>,
    field: &Positioned<Field>,
    json: Vec<u8>,
) -> Option<Value> {
    if ctx.data_opt::<WritesRawJson>().is_some() && selected_once(ctx, field) {
        return Some(Value::Binary(json.into()));
    }
    serde_json::from_slice(&json).ok()
}

/// Whether `field` is the only field of the document under its response key: then no
/// other value is merged with its own, and the library's merge never sees its text.
fn selected_once(ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> bool {
    fn count(set: &SelectionSet, key: &str) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => {
                    usize::from(f.node.response_key().node.as_str() == key)
                        + count(&f.node.selection_set.node, key)
                }
                Selection::FragmentSpread(_) => 0,
                Selection::InlineFragment(inline) => count(&inline.node.selection_set.node, key),
            })
            .sum()
    }
    let key = field.node.response_key().node.as_str();
    let env = ctx.query_env;
    let in_fragments: usize = env
        .fragments
        .values()
        .map(|f| count(&f.node.selection_set.node, key))
        .sum();
    count(&env.operation.node.selection_set.node, key) + in_fragments == 1
}

/// Writes a response's `Value` as `serde_json` would, but copies a walk's text (see the
/// module's documentation) into the output as it is.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
        Value::String(s) => escaped(out, s),
        Value::Enum(name) => escaped(out, name.as_str()),
        Value::Binary(json) => out.extend_from_slice(json),
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                escaped(out, key.as_str());
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn dates_are_written_as_the_scalar_writes_them() {
        let base = Utc.with_ymd_and_hms(2026, 12, 2, 9, 5, 7).unwrap();
        let mut dates = vec![
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(12000, 1, 1, 0, 0, 0).unwrap(),
            Utc::now(),
        ];
        for nanos in [0, 1, 999, 1_000, 120_000, 1_000_000, 7_000_000, 999_999_999] {
            dates.push(base + chrono::Duration::nanoseconds(nanos));
        }
        for at in dates {
            let mut out = Out::default();
            out.datetime(&at);
            let expected =
                serde_json::to_string(&async_graphql::ScalarType::to_value(&at)).unwrap();
            assert_eq!(String::from_utf8(out.0).unwrap(), expected, "{at:?}");
        }
    }

    #[test]
    fn ids_and_strings_are_written_as_serde_json_writes_them() {
        let mut out = Out::default();
        let id = Uuid::now_v7();
        out.id(id);
        out.str("a \"quote\", a \\, a\ttab, é and \u{1}");
        let expected = format!(
            "{}{}",
            serde_json::to_string(&id.to_string()).unwrap(),
            serde_json::to_string("a \"quote\", a \\, a\ttab, é and \u{1}").unwrap()
        );
        assert_eq!(String::from_utf8(out.0).unwrap(), expected);
    }
}
