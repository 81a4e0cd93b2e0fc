//! Which `operationName` a request is counted under in `/metrics`.
//!
//! The name is the client's own text: used as a metric label as sent, a client (or an attacker)
//! sending a million names would make a million series, and `/metrics` would grow without
//! bound. So only the operations the server itself defines, the root fields of its schema
//! (`payment`, `capturePayment`, …), count by name; every other name counts as `other`.

use std::collections::HashSet;

use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

/// The label of a request that names no operation.
pub const ANONYMOUS: &str = "anonymous";
/// The label of a request that names an operation the schema does not define.
pub const OTHER: &str = "other";

/// The root fields of a schema: the names an operation is counted under.
#[derive(Debug, Clone, Default)]
pub struct KnownOperations {
    names: HashSet<String>,
}

impl KnownOperations {
    /// The fields of the query, mutation and subscription types in the schema's SDL.
    pub fn from_sdl(sdl: &str) -> KnownOperations {
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return KnownOperations::default();
        };
        // The root types are the ones the `schema { … }` block names (Query and Mutation
        // when it is absent).
        let mut roots: Vec<String> = document
            .definitions
            .iter()
            .filter_map(|definition| match definition {
                TypeSystemDefinition::Schema(schema) => Some(&schema.node),
                _ => None,
            })
            .flat_map(|schema| [&schema.query, &schema.mutation, &schema.subscription])
            .flatten()
            .map(|name| name.node.to_string())
            .collect();
        if roots.is_empty() {
            roots = vec!["Query".into(), "Mutation".into(), "Subscription".into()];
        }
        let names = document
            .definitions
            .iter()
            .filter_map(|definition| match definition {
                TypeSystemDefinition::Type(definition) => Some(&definition.node),
                _ => None,
            })
            .filter(|definition| {
                roots
                    .iter()
                    .any(|root| *root == definition.name.node.as_str())
            })
            .filter_map(|definition| match &definition.kind {
                TypeKind::Object(object) => Some(object),
                _ => None,
            })
            .flat_map(|object| object.fields.iter())
            .map(|field| field.node.name.node.to_string())
            .collect();
        KnownOperations { names }
    }

    /// The label of a request: its operation name when the schema defines it.
    pub fn label(&self, operation_name: Option<&str>) -> String {
        match operation_name {
            None => ANONYMOUS.to_owned(),
            Some(name) if self.names.contains(name) => name.to_owned(),
            Some(_) => OTHER.to_owned(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_root_fields_of_the_schema_are_labels() {
        let known = KnownOperations::from_sdl(
            "type Query { payment(id: ID!): String events: [String!]! }\n\
             type Mutation { capturePayment(x: Int): String }\n\
             type Payment { status: String }\n\
             schema { query: Query mutation: Mutation }",
        );
        assert_eq!(known.label(Some("payment")), "payment");
        assert_eq!(known.label(Some("capturePayment")), "capturePayment");
        assert_eq!(known.label(Some("status")), OTHER, "not a root field");
        assert_eq!(known.label(Some("x9f3-random")), OTHER);
        assert_eq!(known.label(None), ANONYMOUS);
    }
}
