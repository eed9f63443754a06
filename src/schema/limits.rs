//! Document checks that the GraphQL library does not make: an alias budget (aliases let
//! one document repeat an expensive or guessable field, e.g. 100 `login`s), and no
//! mutation over GET (GET must stay safe to prefetch and cache). Parse errors are labelled
//! here too, since this is where the document is first parsed; the request's variables
//! are read as the spec reads them next (see [`super::variables`]). Every transport
//! (POST, GET, batches, websocket) passes each operation through [`check`].

use std::collections::HashMap;

use async_graphql::{
    parser::types::{
        DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
    },
    Request, ServerError,
};

use super::{
    errors::{request_error, set_code, METHOD_NOT_ALLOWED, PARSE_FAILED, VALIDATION_FAILED},
    variables,
};

/// Query depth, complexity and document limits (API.md's numbers).
pub(crate) const MAX_DEPTH: usize = 15;
pub(crate) const MAX_COMPLEXITY: usize = 5_000;
pub(crate) const MAX_ALIASES: usize = 30;
pub(crate) const MAX_BATCH: usize = 10;
/// Nesting of fragments and lists that the parser follows before refusing a document.
pub(crate) const MAX_RECURSIVE_DEPTH: usize = 32;
/// Directives on one field.
pub(crate) const MAX_DIRECTIVES: usize = 5;

/// What the logs say of the operation a request runs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Operation {
    /// The operation's name, when it has one.
    pub(crate) name: Option<String>,
    /// `query`, `mutation` or `subscription`, when it can be told.
    pub(crate) kind: Option<&'static str>,
}

impl Operation {
    /// The span the operation runs in: its name and type, and the caller (`user_id`,
    /// empty when anonymous). It nests in the HTTP request's span, which carries the
    /// request id.
    pub(crate) fn span(&self, user_id: Option<uuid::Uuid>) -> tracing::Span {
        tracing::info_span!(
            "graphql",
            operation_name = self.name.as_deref().unwrap_or(""),
            operation_type = self.kind.unwrap_or(""),
            user_id = %user_id.map(|u| u.to_string()).unwrap_or_default(),
        )
    }
}

/// Parses the request's document and applies the checks. `over_get` is true for
/// `GET /graphql` requests. Returns what the logs say of the operation.
pub(crate) fn check(request: &mut Request, over_get: bool) -> Result<Operation, ServerError> {
    let operation_name = request.operation_name.clone();
    let doc = match documents::parse(&request.query) {
        Ok(doc) => doc,
        Err(err) => {
            let mut err = ServerError::from(err);
            set_code(&mut err, PARSE_FAILED);
            return Err(err);
        }
    };
    let aliases = count_aliases(&doc);
    if aliases > MAX_ALIASES {
        return Err(request_error(
            VALIDATION_FAILED,
            format!("the document uses {aliases} aliases; at most {MAX_ALIASES} are allowed"),
        ));
    }
    let ty = selected_type(&doc, operation_name.as_deref());
    if over_get && ty == Some(OperationType::Mutation) {
        return Err(request_error(
            METHOD_NOT_ALLOWED,
            "mutations are only accepted over POST",
        ));
    }
    let kind = ty.map(|t| match t {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    });
    let name = operation_name.clone().or_else(|| match &doc.operations {
        DocumentOperations::Multiple(ops) if ops.len() == 1 => {
            ops.keys().next().map(|n| n.to_string())
        }
        _ => None,
    });
    // One file part may fill many `uploadMedia` fields, each of which stores it.
    if let Some((_, op)) = variables::selected(&doc, operation_name.as_deref()) {
        let uploads = variables::root_calls(op, &doc.fragments, "uploadMedia");
        if uploads > crate::services::media::MAX_FILES {
            return Err(request_error(
                VALIDATION_FAILED,
                format!(
                    "an operation uploads at most {} files; this one calls uploadMedia {uploads} times",
                    crate::services::media::MAX_FILES
                ),
            ));
        }
    }
    let prepared = variables::prepare(request, &doc)?;
    request.set_parsed_query(prepared.unwrap_or(doc));
    Ok(Operation { name, kind })
}

/// Parsed documents by their text. Front ends send the same few documents over and over;
/// parsing one (async-graphql's pest grammar) cost about 5% of the server's CPU per feed
/// request, a copy of the parsed tree a fraction of that. Only documents that parse are
/// kept, at most [`documents::KEPT`] of at most [`documents::KEPT_BYTES`] each, so the
/// memory stays bounded whatever clients send; when full, an arbitrary entry makes room
/// (a client that sends ever-new documents only costs what parsing costs anyway).
mod documents {
    use std::{
        collections::HashMap,
        sync::{Mutex, OnceLock},
    };

    use async_graphql::parser::{parse_query, types::ExecutableDocument, Error};

    pub(super) const KEPT: usize = 256;
    pub(super) const KEPT_BYTES: usize = 16 * 1024;

    fn kept() -> &'static Mutex<HashMap<String, ExecutableDocument>> {
        static KEPT_DOCUMENTS: OnceLock<Mutex<HashMap<String, ExecutableDocument>>> =
            OnceLock::new();
        KEPT_DOCUMENTS.get_or_init(|| Mutex::new(HashMap::with_capacity(KEPT)))
    }

    pub(super) fn parse(query: &str) -> Result<ExecutableDocument, Error> {
        if query.len() > KEPT_BYTES {
            return parse_query(query);
        }
        if let Some(doc) = kept().lock().ok().and_then(|m| m.get(query).cloned()) {
            return Ok(doc);
        }
        let doc = parse_query(query)?;
        if let Ok(mut map) = kept().lock() {
            super::insert_bounded(&mut map, KEPT, query.to_string(), doc.clone());
        }
        Ok(doc)
    }
}

/// Inserts into a cache of at most `cap` entries: when full, an arbitrary entry makes room.
fn insert_bounded<V>(map: &mut HashMap<String, V>, cap: usize, key: String, value: V) {
    if map.len() >= cap && !map.contains_key(&key) {
        if let Some(any) = map.keys().next().cloned() {
            map.remove(&any);
        }
    }
    map.insert(key, value);
}

/// The reads (document, operation name, variables) that passed full validation, so that
/// the same read again skips it (`crate::assemble`): validation was about 4% of the
/// server's CPU per feed request, for a document front ends send over and over with the
/// same few variables. Bounded like [`documents`]: at most [`Validated::KEPT`] keys of a
/// document of at most 16 KiB; when full, an arbitrary key makes room.
#[derive(Default)]
pub(crate) struct Validated(std::sync::Mutex<HashMap<String, ()>>);

impl Validated {
    const KEPT: usize = 1024;

    /// The key of `request`, when it may be kept.
    pub(crate) fn key(&self, request: &Request) -> Option<String> {
        if request.query.len() > documents::KEPT_BYTES {
            return None;
        }
        let variables = serde_json::to_string(&request.variables).ok()?;
        let name = request.operation_name.as_deref().unwrap_or("");
        // Lengths first, so that no two requests make the same key.
        Some(format!(
            "{}:{}{}:{name}{variables}",
            request.query.len(),
            request.query,
            name.len()
        ))
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.0.lock().is_ok_and(|set| set.contains_key(key))
    }

    pub(crate) fn insert(&self, key: String) {
        if let Ok(mut set) = self.0.lock() {
            insert_bounded(&mut set, Self::KEPT, key, ());
        }
    }
}

/// The type of the operation the request will run, when it can be told.
pub(crate) fn selected_type(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    }
}

fn count_aliases(doc: &ExecutableDocument) -> usize {
    let ops: usize = doc
        .operations
        .iter()
        .map(|(_, op)| in_set(&op.node.selection_set.node))
        .sum();
    let fragments: usize = doc
        .fragments
        .values()
        .map(|f| in_set(&f.node.selection_set.node))
        .sum();
    ops + fragments
}

fn in_set(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some()) + in_set(&f.node.selection_set.node)
            }
            Selection::InlineFragment(f) => in_set(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_aliases_everywhere() {
        let mut r = Request::new("query { a: me { id } ... on Query { b: me { c: id } } } fragment F on Query { d: me { id } }");
        let doc = r.parsed_query().unwrap();
        assert_eq!(count_aliases(doc), 4);
    }

    #[test]
    fn refuses_mutation_over_get_only() {
        let mut r = Request::new("mutation { logout }");
        assert!(check(&mut r, true).is_err());
        let mut r = Request::new("mutation { logout }");
        assert!(check(&mut r, false).is_ok());
    }
}
