//! Variables as the GraphQL spec reads them, before the library executes a request.
//!
//! Front ends (Apollo Client, urql, Relay) write one document per form that declares every
//! variable and send only the variables that are set: an undefined JavaScript value is
//! dropped from the JSON. The spec says an argument bound to a variable that the request
//! does not provide (and that has no default) is *absent*, so "omitted keeps the value,
//! null clears it" must hold for such requests. async-graphql instead reads an unprovided
//! nullable variable as `null` (it falls back to `VariableDefinition::default_value`,
//! which is `null` for nullable types), which would clear what the user never touched.
//!
//! So before execution the selected operation is cut out of the document with the
//! fragments it reaches, and every use of an unprovided nullable variable is removed from
//! it: an argument or an input-object field bound to one is dropped (absent, so the
//! argument's default applies and `MaybeUndefined` reads `Undefined`), and a list item
//! bound to one becomes `null` (a list has no absent items). Update mutations get this for
//! free: they only have to take `MaybeUndefined` arguments.
//!
//! Required variables are checked here too, because the library only finds a missing one
//! while resolving, as an uncoded error with a path. A missing or null non-null variable is
//! a request error (`BAD_USER_INPUT`, `extensions.field` naming the variable) and nothing
//! runs. Defaults of unprovided variables are copied into the variables, so that the
//! library's validation checks every argument value whole (it skips a value in which a
//! variable is missing) and a mistyped variable is refused before any resolver runs.
//!
//! Upload markers a client wrote itself (rather than the multipart parser) are refused
//! here too, before the library would panic on them.
//!
//! Only the selected operation is validated and run: the other operations of a document
//! (GraphiQL sends the whole editor with an `operationName`) are dropped first, since
//! rewriting a fragment they share could otherwise make them invalid.

use std::collections::{HashMap, HashSet};

use async_graphql::{
    parser::{
        types::{
            Directive, DocumentOperations, ExecutableDocument, FragmentDefinition,
            OperationDefinition, Selection, SelectionSet,
        },
        Positioned,
    },
    Name, Request, ServerError, Value,
};
use async_graphql_value::Value as InputValue;

use super::errors::{set_code, BAD_USER_INPUT};

/// Applies the rules above to `request`, whose document `doc` is (already parsed).
/// Returns the document to run when it differs from `doc`. When the operation cannot be
/// selected (an unknown `operationName`, several operations and none named) the document
/// is left to the library, which refuses it with a validation error.
pub(crate) fn prepare(
    request: &mut Request,
    doc: &ExecutableDocument,
) -> Result<Option<ExecutableDocument>, ServerError> {
    let Some((name, operation)) = selected(doc, request.operation_name.as_deref()) else {
        return Ok(None);
    };
    let mut unprovided = HashSet::new();
    for def in &operation.node.variable_definitions {
        let var = &def.node;
        let provided = request.variables.get(&var.name.node);
        let nullable = var.var_type.node.nullable;
        match (provided, &var.default_value) {
            (Some(Value::Null), _) if !nullable => {
                return Err(variable_error(
                    def.pos,
                    &var.name.node,
                    format!(
                        "Variable \"${}\" of non-null type \"{}\" must not be null",
                        var.name.node, var.var_type.node
                    ),
                ))
            }
            (Some(_), _) => {}
            (None, Some(default)) => {
                request
                    .variables
                    .insert(var.name.node.clone(), default.node.clone());
            }
            (None, None) if nullable => {
                unprovided.insert(var.name.node.clone());
            }
            (None, None) => {
                return Err(variable_error(
                    def.pos,
                    &var.name.node,
                    format!(
                        "Variable \"${}\" of required type \"{}\" was not provided",
                        var.name.node, var.var_type.node
                    ),
                ))
            }
        }
    }
    // After the defaults are in: a default can hold a forged marker too.
    check_uploads(request, operation, &doc.fragments)?;
    let several = matches!(&doc.operations, DocumentOperations::Multiple(ops) if ops.len() > 1);
    if unprovided.is_empty() && !several {
        return Ok(None);
    }

    let mut operation = operation.clone();
    operation
        .node
        .variable_definitions
        .retain(|def| !unprovided.contains(&def.node.name.node));
    without_in_directives(&mut operation.node.directives, &unprovided);
    without_in_set(&mut operation.node.selection_set.node, &unprovided);
    let mut fragments = reachable_fragments(&operation.node.selection_set.node, &doc.fragments);
    for fragment in fragments.values_mut() {
        without_in_directives(&mut fragment.node.directives, &unprovided);
        without_in_set(&mut fragment.node.selection_set.node, &unprovided);
    }
    // The library selects by `operationName` again: a named operation stays in a map.
    let operations = match name {
        None => DocumentOperations::Single(operation),
        Some(name) => DocumentOperations::Multiple(HashMap::from([(name, operation)])),
    };
    Ok(Some(ExecutableDocument {
        operations,
        fragments,
    }))
}

/// The library marks a file part of a multipart request by setting its variable to
/// `#__graphql_file__:<index>`, and panics on such a string when the index is not a number
/// or names no file. A client could write one into its JSON variables or its document, so
/// only the markers the multipart parser itself set are let through.
const UPLOAD_MARKER: &str = "#__graphql_file__:";

fn forged_upload() -> ServerError {
    let mut err = ServerError::new(
        "an upload must be sent as a file part of a multipart request",
        None,
    );
    set_code(&mut err, BAD_USER_INPUT);
    err
}

fn check_uploads(
    request: &Request,
    operation: &Positioned<OperationDefinition>,
    fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
) -> Result<(), ServerError> {
    fn in_variables(value: &Value, files: usize) -> bool {
        match value {
            Value::String(s) => s
                .strip_prefix(UPLOAD_MARKER)
                .is_none_or(|n| n.parse::<usize>().is_ok_and(|n| n < files)),
            Value::List(items) => items.iter().all(|v| in_variables(v, files)),
            Value::Object(fields) => fields.values().all(|v| in_variables(v, files)),
            _ => true,
        }
    }
    fn in_literal(value: &InputValue) -> bool {
        match value {
            InputValue::String(s) => !s.starts_with(UPLOAD_MARKER),
            InputValue::List(items) => items.iter().all(in_literal),
            InputValue::Object(fields) => fields.values().all(in_literal),
            _ => true,
        }
    }
    fn in_set(set: &SelectionSet) -> bool {
        set.items.iter().all(|item| match &item.node {
            Selection::Field(f) => {
                f.node.arguments.iter().all(|(_, v)| in_literal(&v.node))
                    && in_set(&f.node.selection_set.node)
            }
            Selection::InlineFragment(f) => in_set(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => true,
        })
    }
    let files = request.uploads.len();
    // A variable declared `Upload` holds a marker the parser set, or nothing.
    let uploads_declared = operation.node.variable_definitions.iter().all(|def| {
        let declared_upload = match &def.node.var_type.node.base {
            async_graphql::parser::types::BaseType::Named(n) => n.as_str() == "Upload",
            async_graphql::parser::types::BaseType::List(_) => false,
        };
        !declared_upload
            || match request.variables.get(&def.node.name.node) {
                Some(Value::String(s)) => s.starts_with(UPLOAD_MARKER),
                _ => true,
            }
    });
    let clean = uploads_declared
        && request.variables.values().all(|v| in_variables(v, files))
        && in_set(&operation.node.selection_set.node)
        && fragments
            .values()
            .all(|f| in_set(&f.node.selection_set.node));
    if clean {
        Ok(())
    } else {
        Err(forged_upload())
    }
}

/// How many times the operation calls `field` at its root (through fragments too).
/// Repeating a field is no alias: the library runs every copy.
pub(crate) fn root_calls(
    operation: &Positioned<OperationDefinition>,
    fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
    field: &str,
) -> usize {
    fn count(
        set: &SelectionSet,
        fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
        field: &str,
        depth: usize,
    ) -> usize {
        if depth > 32 {
            return 0;
        }
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => usize::from(f.node.name.node.as_str() == field),
                Selection::InlineFragment(f) => {
                    count(&f.node.selection_set.node, fragments, field, depth + 1)
                }
                Selection::FragmentSpread(s) => fragments
                    .get(&s.node.fragment_name.node)
                    .map(|f| count(&f.node.selection_set.node, fragments, field, depth + 1))
                    .unwrap_or(0),
            })
            .sum()
    }
    count(&operation.node.selection_set.node, fragments, field, 0)
}

fn variable_error(pos: async_graphql::Pos, name: &Name, message: String) -> ServerError {
    let mut err = ServerError::new(message, Some(pos));
    set_code(&mut err, BAD_USER_INPUT);
    if let Some(ext) = err.extensions.as_mut() {
        ext.set("field", name.as_str());
    }
    err
}

/// The operation the request runs, as the library will select it.
pub(crate) fn selected<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<(Option<Name>, &'d Positioned<OperationDefinition>)> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), None) => Some((None, op)),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .get_key_value(name)
            .map(|(name, op)| (Some(name.clone()), op)),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.iter().next().map(|(name, op)| (Some(name.clone()), op))
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The fragments `set` spreads, directly or through other fragments. A spread of an
/// unknown fragment is kept out here and reported by validation.
fn reachable_fragments(
    set: &SelectionSet,
    all: &HashMap<Name, Positioned<FragmentDefinition>>,
) -> HashMap<Name, Positioned<FragmentDefinition>> {
    let mut found = HashMap::new();
    let mut pending = Vec::new();
    spreads(set, &mut pending);
    while let Some(name) = pending.pop() {
        if found.contains_key(&name) {
            continue;
        }
        if let Some(fragment) = all.get(&name) {
            spreads(&fragment.node.selection_set.node, &mut pending);
            found.insert(name, fragment.clone());
        }
    }
    found
}

fn spreads(set: &SelectionSet, out: &mut Vec<Name>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => spreads(&f.node.selection_set.node, out),
            Selection::InlineFragment(f) => spreads(&f.node.selection_set.node, out),
            Selection::FragmentSpread(s) => out.push(s.node.fragment_name.node.clone()),
        }
    }
}

/// Removes the uses of `gone` from `value`; false when `value` itself is one of them
/// (the caller then drops the argument or object field that holds it).
fn without(value: &mut InputValue, gone: &HashSet<Name>) -> bool {
    match value {
        InputValue::Variable(name) => !gone.contains(name),
        InputValue::List(items) => {
            for item in items.iter_mut() {
                if !without(item, gone) {
                    *item = InputValue::Null;
                }
            }
            true
        }
        InputValue::Object(fields) => {
            fields.retain(|_, v| without(v, gone));
            true
        }
        _ => true,
    }
}

fn without_in_arguments(
    arguments: &mut Vec<(Positioned<Name>, Positioned<InputValue>)>,
    gone: &HashSet<Name>,
) {
    arguments.retain_mut(|(_, value)| without(&mut value.node, gone));
}

fn without_in_directives(directives: &mut [Positioned<Directive>], gone: &HashSet<Name>) {
    for d in directives {
        without_in_arguments(&mut d.node.arguments, gone);
    }
}

fn without_in_set(set: &mut SelectionSet, gone: &HashSet<Name>) {
    for item in &mut set.items {
        match &mut item.node {
            Selection::Field(f) => {
                without_in_arguments(&mut f.node.arguments, gone);
                without_in_directives(&mut f.node.directives, gone);
                without_in_set(&mut f.node.selection_set.node, gone);
            }
            Selection::InlineFragment(f) => {
                without_in_directives(&mut f.node.directives, gone);
                without_in_set(&mut f.node.selection_set.node, gone);
            }
            Selection::FragmentSpread(f) => without_in_directives(&mut f.node.directives, gone),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::Variables;

    /// Prepares `query` with `variables` and operation `name`.
    fn prepared(
        query: &str,
        name: Option<&str>,
        variables: serde_json::Value,
    ) -> (Request, ExecutableDocument) {
        let mut request = Request::new(query).variables(Variables::from_json(variables));
        request.operation_name = name.map(str::to_string);
        let doc = async_graphql::parser::parse_query(query).unwrap();
        let out = prepare(&mut request, &doc).unwrap().unwrap_or(doc);
        (request, out)
    }

    /// Every field of `set` with its arguments, as `name(arg: value, …)`.
    fn fields(set: &SelectionSet, out: &mut Vec<String>) {
        for item in &set.items {
            if let Selection::Field(f) = &item.node {
                let args: Vec<String> = f
                    .node
                    .arguments
                    .iter()
                    .map(|(n, v)| format!("{}: {}", n.node, v.node))
                    .collect();
                out.push(format!("{}({})", f.node.name.node, args.join(", ")));
                fields(&f.node.selection_set.node, out);
            }
        }
    }

    fn operation_fields(doc: &ExecutableDocument) -> Vec<String> {
        let mut out = Vec::new();
        for (_, op) in doc.operations.iter() {
            fields(&op.node.selection_set.node, &mut out);
        }
        out
    }

    fn variables_of(doc: &ExecutableDocument) -> Vec<String> {
        doc.operations
            .iter()
            .flat_map(|(_, op)| op.node.variable_definitions.iter())
            .map(|d| d.node.name.node.to_string())
            .collect()
    }

    #[test]
    fn unprovided_nullable_variables_leave_arguments_and_fields_absent() {
        let (_, doc) = prepared(
            "mutation U($a: String, $b: String, $c: [String]) { f(x: $a, y: $b, o: {p: $b, q: 1}, l: [$b, $a], c: $c) }",
            Some("U"),
            serde_json::json!({"a": "1"}),
        );
        assert_eq!(
            operation_fields(&doc),
            vec!["f(x: $a, o: {q: 1}, l: [null, $a])"]
        );
        assert_eq!(
            variables_of(&doc),
            vec!["a"],
            "the unused definitions go too"
        );
    }

    #[test]
    fn only_the_selected_operation_and_the_fragments_it_reaches_remain() {
        let (_, doc) = prepared(
            "query A($x: ID) { ...F } query B { me { id } } fragment F on Query { ...H } fragment H on Query { user(id: $x) { id } } fragment G on Query { me { id } }",
            Some("A"),
            serde_json::json!({}),
        );
        let names: Vec<String> = doc
            .operations
            .iter()
            .map(|(n, _)| format!("{n:?}"))
            .collect();
        assert_eq!(names, vec!["Some(Name(\"A\"))"]);
        let mut fragments: Vec<&str> = doc.fragments.keys().map(|k| k.as_str()).collect();
        fragments.sort();
        assert_eq!(fragments, vec!["F", "H"]);
        let mut out = Vec::new();
        fields(&doc.fragments["H"].node.selection_set.node, &mut out);
        assert_eq!(out, vec!["user()", "id()"]);
    }

    #[test]
    fn a_document_with_everything_provided_is_left_as_it_is() {
        let query = "mutation U($a: String) { f(x: $a) }";
        let mut request =
            Request::new(query).variables(Variables::from_json(serde_json::json!({"a": null})));
        let doc = async_graphql::parser::parse_query(query).unwrap();
        assert!(prepare(&mut request, &doc).unwrap().is_none());
    }

    #[test]
    fn defaults_are_copied_into_the_variables() {
        let (request, _) = prepared(
            "query($n: Int = 3) { f(n: $n) }",
            None,
            serde_json::json!({}),
        );
        assert_eq!(request.variables.get("n"), Some(&Value::from(3)));
    }

    #[test]
    fn missing_or_null_required_variables_are_refused() {
        for vars in [serde_json::json!({}), serde_json::json!({"id": null})] {
            let query = "query Q($id: ID!) { user(id: $id) { id } }";
            let mut request = Request::new(query).variables(Variables::from_json(vars));
            let doc = async_graphql::parser::parse_query(query).unwrap();
            let err = prepare(&mut request, &doc).unwrap_err();
            assert!(err.message.contains("$id"), "{}", err.message);
            assert_eq!(
                err.locations,
                vec![async_graphql::Pos { line: 1, column: 9 }]
            );
        }
    }
}
