//! Document checks that the GraphQL library does not make: an alias budget (aliases let
//! one document repeat an expensive or guessable field, e.g. 100 `login`s), and no
//! mutation over GET (GET must stay safe to prefetch and cache). Parse errors are labelled
//! here too, since this is where the document is first parsed.
//!
//! One correction to the library as well: an argument given as a nullable variable that
//! the request does not provide (and that has no default) is absent, as the GraphQL spec
//! says, not null. Clients drop undefined variables from the JSON, and "omitted keeps the
//! value, null clears it" must hold for them too.
//!
//! One correction to the library as well: an argument given as a nullable variable that
//! the request does not provide (and that has no default) is absent, as the GraphQL spec
//! says, not null. Clients drop undefined variables from the JSON, and "omitted keeps the
//! value, null clears it" must hold for them too.

use async_graphql::{
    parser::{
        types::{
            Directive, DocumentOperations, ExecutableDocument, OperationType, Selection,
            SelectionSet,
        },
        Positioned,
    },
    Name, Request, ServerError,
};
use async_graphql_value::Value as InputValue;
use std::collections::HashSet;

use super::{
    errors::{request_error, set_code, METHOD_NOT_ALLOWED, PARSE_FAILED, VALIDATION_FAILED},
    MAX_ALIASES,
};

/// Parses the request's document and applies the checks. `over_get` is true for
/// `GET /graphql` requests.
pub fn check(request: &mut Request, over_get: bool) -> Result<(), ServerError> {
    let operation_name = request.operation_name.clone();
    let provided: HashSet<Name> = request.variables.keys().cloned().collect();
    let doc = match request.parsed_query() {
        Ok(doc) => doc,
        Err(mut err) => {
            set_code(&mut err, PARSE_FAILED);
            return Err(err);
        }
    };
    let aliases = count_aliases(doc);
    if aliases > MAX_ALIASES {
        return Err(request_error(
            VALIDATION_FAILED,
            format!("the document uses {aliases} aliases; at most {MAX_ALIASES} are allowed"),
        ));
    }
    if over_get && selected_type(doc, operation_name.as_deref()) == Some(OperationType::Mutation) {
        return Err(request_error(
            METHOD_NOT_ALLOWED,
            "mutations are only accepted over POST",
        ));
    }
    // Only in single-operation documents: variables belong to one operation, and the
    // other operations of a document are validated too, so rewriting shared fragments for
    // one of them could break another. Non-null variables are left to validation, which
    // refuses them when missing.
    let unprovided: HashSet<Name> = match &doc.operations {
        DocumentOperations::Single(op) => op
            .node
            .variable_definitions
            .iter()
            .filter(|def| {
                def.node.default_value.is_none()
                    && def.node.var_type.node.nullable
                    && !provided.contains(&def.node.name.node)
            })
            .map(|def| def.node.name.node.clone())
            .collect(),
        DocumentOperations::Multiple(_) => HashSet::new(),
    };
    if !unprovided.is_empty() {
        let mut doc = doc.clone();
        match &mut doc.operations {
            DocumentOperations::Single(op) => {
                drop_arguments(&mut op.node.selection_set.node, &unprovided)
            }
            DocumentOperations::Multiple(ops) => {
                for op in ops.values_mut() {
                    drop_arguments(&mut op.node.selection_set.node, &unprovided);
                }
            }
        }
        for fragment in doc.fragments.values_mut() {
            drop_arguments(&mut fragment.node.selection_set.node, &unprovided);
        }
        // A definition nothing refers to any more goes too, or validation would call it
        // unused.
        let mut used = HashSet::new();
        for (_, op) in doc.operations.iter() {
            used_in_directives(&op.node.directives, &mut used);
            used_in_set(&op.node.selection_set.node, &mut used);
        }
        for fragment in doc.fragments.values() {
            used_in_directives(&fragment.node.directives, &mut used);
            used_in_set(&fragment.node.selection_set.node, &mut used);
        }
        let keep = |name: &Name| !unprovided.contains(name) || used.contains(name);
        match &mut doc.operations {
            DocumentOperations::Single(op) => op
                .node
                .variable_definitions
                .retain(|d| keep(&d.node.name.node)),
            DocumentOperations::Multiple(ops) => {
                for op in ops.values_mut() {
                    op.node
                        .variable_definitions
                        .retain(|d| keep(&d.node.name.node));
                }
            }
        }
        request.set_parsed_query(doc);
    }
    Ok(())
}

fn used_in_value(value: &InputValue, used: &mut HashSet<Name>) {
    match value {
        InputValue::Variable(name) => {
            used.insert(name.clone());
        }
        InputValue::List(items) => items.iter().for_each(|v| used_in_value(v, used)),
        InputValue::Object(fields) => fields.values().for_each(|v| used_in_value(v, used)),
        _ => {}
    }
}

fn used_in_directives(directives: &[Positioned<Directive>], used: &mut HashSet<Name>) {
    for d in directives {
        for (_, v) in &d.node.arguments {
            used_in_value(&v.node, used);
        }
    }
}

fn used_in_set(set: &SelectionSet, used: &mut HashSet<Name>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                for (_, v) in &f.node.arguments {
                    used_in_value(&v.node, used);
                }
                used_in_directives(&f.node.directives, used);
                used_in_set(&f.node.selection_set.node, used);
            }
            Selection::InlineFragment(f) => {
                used_in_directives(&f.node.directives, used);
                used_in_set(&f.node.selection_set.node, used);
            }
            Selection::FragmentSpread(f) => used_in_directives(&f.node.directives, used),
        }
    }
}

/// Removes field arguments whose whole value is one of `unprovided`.
fn drop_arguments(set: &mut SelectionSet, unprovided: &HashSet<Name>) {
    for item in &mut set.items {
        match &mut item.node {
            Selection::Field(f) => {
                f.node.arguments.retain(
                    |(_, v)| !matches!(&v.node, InputValue::Variable(name) if unprovided.contains(name)),
                );
                drop_arguments(&mut f.node.selection_set.node, unprovided);
            }
            Selection::InlineFragment(f) => {
                drop_arguments(&mut f.node.selection_set.node, unprovided)
            }
            Selection::FragmentSpread(_) => {}
        }
    }
}

/// The type of the operation the request will run, when it can be told.
pub fn selected_type(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
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

#[cfg(test)]
mod unprovided {
    use super::*;

    #[test]
    fn unprovided_variables_become_absent_arguments() {
        let mut r = Request::new("mutation($a: String, $b: String) { f(x: $a, y: $b) }").variables(
            async_graphql::Variables::from_json(serde_json::json!({"a": "1"})),
        );
        check(&mut r, false).unwrap();
        let doc = r.parsed_query().unwrap();
        let DocumentOperations::Single(op) = &doc.operations else {
            panic!()
        };
        let Selection::Field(f) = &op.node.selection_set.node.items[0].node else {
            panic!()
        };
        let names: Vec<&str> = f
            .node
            .arguments
            .iter()
            .map(|(n, _)| n.node.as_str())
            .collect();
        assert_eq!(names, vec!["x"]);
        let vars: Vec<&str> = op
            .node
            .variable_definitions
            .iter()
            .map(|d| d.node.name.node.as_str())
            .collect();
        assert_eq!(
            vars,
            vec!["a"],
            "the definition of the dropped variable goes too"
        );
    }

    #[test]
    fn missing_non_null_variables_are_left_to_validation() {
        let mut r = Request::new("mutation($a: String!) { f(x: $a) }");
        check(&mut r, false).unwrap();
        let doc = r.parsed_query().unwrap();
        let DocumentOperations::Single(op) = &doc.operations else {
            panic!()
        };
        assert_eq!(op.node.variable_definitions.len(), 1);
        let Selection::Field(f) = &op.node.selection_set.node.items[0].node else {
            panic!()
        };
        assert_eq!(f.node.arguments.len(), 1);
    }
}
