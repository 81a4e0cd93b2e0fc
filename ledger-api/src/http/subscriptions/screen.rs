//! What a client's message may be before async-graphql sees it: the socket serves
//! subscriptions only, so a `subscribe` of a query or a mutation is answered here with the
//! protocol's `error` message and never executed (a mutation run there would escape the HTTP
//! body limit, timeout and per-request accounting).

use async_graphql::http::WebSocketProtocols;
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::ErrorExtensions;
use serde_json::{json, Value};

use crate::error::ApiError;

/// What to do with one message from the client.
#[derive(Debug, PartialEq)]
pub enum Screened {
    /// Pass it on to async-graphql; `introduces` when it is `connection_init`.
    Forward { introduces: bool },
    /// Answer it with this protocol message instead.
    Refuse(String),
}

/// Screens one text or binary message. Anything this cannot read is forwarded, for
/// async-graphql to refuse as it always has (a malformed message, an unparsable query).
pub fn screen(message: &[u8], protocol: WebSocketProtocols) -> Screened {
    let Ok(message) = serde_json::from_slice::<Value>(message) else {
        return Screened::Forward { introduces: false };
    };
    let kind = message.get("type").and_then(Value::as_str);
    if kind == Some("connection_init") {
        return Screened::Forward { introduces: true };
    }
    // `subscribe` in graphql-transport-ws, `start` in the older graphql-ws.
    if !matches!(kind, Some("subscribe" | "start")) {
        return Screened::Forward { introduces: false };
    }
    let (Some(id), Some(payload)) = (
        message.get("id").and_then(Value::as_str),
        message.get("payload"),
    ) else {
        return Screened::Forward { introduces: false };
    };
    match operation_type(payload) {
        Some(OperationType::Query | OperationType::Mutation) => {
            Screened::Refuse(refusal(id, protocol))
        }
        Some(OperationType::Subscription) | None => Screened::Forward { introduces: false },
    }
}

/// The type of the operation the payload would run, chosen as async-graphql chooses it: the
/// one named by `operationName`, else the document's only one. `None` when there is none to
/// choose, which async-graphql then refuses itself.
fn operation_type(payload: &Value) -> Option<OperationType> {
    let query = payload.get("query")?.as_str()?;
    let name = payload.get("operationName").and_then(Value::as_str);
    let document = async_graphql::parser::parse_query(query).ok()?;
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation.node.ty),
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .iter()
            .find(|(candidate, _)| candidate.as_str() == name)
            .map(|(_, operation)| operation.node.ty),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations
            .values()
            .next()
            .map(|operation| operation.node.ty),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The protocol's `error` message for a query or mutation: the operation ends with it.
fn refusal(id: &str, protocol: WebSocketProtocols) -> String {
    let error = ApiError::validation(
        "query",
        "this websocket serves subscriptions only; send queries and mutations to POST /graphql",
    )
    .extend();
    let error = json!({"message": error.message, "extensions": error.extensions});
    let payload = match protocol {
        // graphql-transport-ws carries a list of errors, graphql-ws a single one.
        WebSocketProtocols::GraphQLWS => json!([error]),
        WebSocketProtocols::SubscriptionsTransportWS => error,
    };
    json!({"type": "error", "id": id, "payload": payload}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribe(query: &str, operation_name: Option<&str>) -> Vec<u8> {
        json!({"type": "subscribe", "id": "1",
               "payload": {"query": query, "operationName": operation_name}})
        .to_string()
        .into_bytes()
    }

    fn refused(message: &[u8]) -> bool {
        matches!(
            screen(message, WebSocketProtocols::GraphQLWS),
            Screened::Refuse(_)
        )
    }

    #[test]
    fn only_subscriptions_pass() {
        assert!(refused(&subscribe("{ projectionLag }", None)));
        assert!(refused(&subscribe("query { projectionLag }", None)));
        assert!(refused(&subscribe("mutation M { x }", None)));
        assert!(!refused(&subscribe(
            "subscription { ledgerEvents { position } }",
            None
        )));
        let both = "query Q { projectionLag } subscription S { ledgerEvents { position } }";
        assert!(refused(&subscribe(both, Some("Q"))));
        assert!(!refused(&subscribe(both, Some("S"))));
        // Not ours to judge: async-graphql refuses these with its own errors.
        assert!(!refused(&subscribe(both, None)));
        assert!(!refused(&subscribe("subscription {", None)));
        assert!(!refused(b"not json"));
    }

    #[test]
    fn connection_init_introduces_the_connection() {
        let init = br#"{"type": "connection_init", "payload": {}}"#;
        assert_eq!(
            screen(init, WebSocketProtocols::GraphQLWS),
            Screened::Forward { introduces: true }
        );
    }

    #[test]
    fn a_refusal_is_the_protocol_error_message_with_a_code() {
        let Screened::Refuse(message) = screen(
            &subscribe("{ projectionLag }", None),
            WebSocketProtocols::GraphQLWS,
        ) else {
            panic!("a query passed");
        };
        let message: Value = serde_json::from_str(&message).unwrap();
        assert_eq!(message["type"], "error");
        assert_eq!(message["id"], "1");
        assert_eq!(
            message["payload"][0]["extensions"]["code"],
            "VALIDATION_ERROR"
        );
        assert_eq!(message["payload"][0]["extensions"]["retryable"], false);
    }
}
