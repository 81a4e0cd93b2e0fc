//! One line of a bulk request: read as a command, run as its mutation, answered as JSON.

use async_graphql::{Request, Variables};
use serde::Deserialize;
use serde_json::{json, Value};

use super::documents;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::ServerState;

/// A line as the client sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub command: String,
    pub input: Value,
}

/// Reads a line; a line that is not a command of a known name is that line's error.
pub fn parse(text: &str) -> Result<Command, ApiError> {
    let command: Command = serde_json::from_str(text).map_err(|error| {
        ApiError::validation(
            "line",
            format!(
                "a line is one JSON object {{\"command\": \"<mutation>\", \"input\": {{…}}}}: \
                 {error}"
            ),
        )
    })?;
    if documents::document(&command.command).is_none() {
        let known: Vec<&str> = documents::COMMANDS.iter().map(|(name, _)| *name).collect();
        return Err(ApiError::validation(
            "command",
            format!(
                "{:?} is not a bulk command; one of {}",
                command.command,
                known.join(", ")
            ),
        ));
    }
    Ok(command)
}

/// Runs a command as its mutation, with `data` (the atomic request's unit) beside the caller,
/// and answers with the mutation's payload or its first error.
pub async fn run<D: std::any::Any + Send + Sync>(
    state: &ServerState,
    principal: &Principal,
    command: &Command,
    data: Option<D>,
) -> Value {
    let Some(document) = documents::document(&command.command) else {
        return error(&ApiError::internal("a parsed command lost its document"));
    };
    let mut request = Request::new(document.query.as_str())
        .variables(Variables::from_json(json!({ "input": command.input })))
        .data(*principal);
    if let Some(data) = data {
        request = request.data(data);
    }
    request.set_parsed_query(document.parsed.clone());
    let response = state.schema.execute(request).await;
    if let Some(first) = response.errors.first() {
        let mut error = serde_json::Map::new();
        error.insert("message".to_owned(), Value::from(first.message.clone()));
        if let Some(extensions) = &first.extensions {
            for key in ["code", "retryable", "rule", "field"] {
                if let Some(value) = extensions.get(key) {
                    let value = value.clone().into_json().unwrap_or(Value::Null);
                    error.insert(key.to_owned(), value);
                }
            }
        }
        return json!({ "error": error });
    }
    match response.data.into_json() {
        Ok(Value::Object(mut data)) => data.remove(&command.command).unwrap_or(Value::Null),
        _ => error(&ApiError::internal("a mutation answered no object")),
    }
}

/// A line's error, in the shape every line error has.
pub fn error(error: &ApiError) -> Value {
    let mut shape = json!({
        "message": error.client_message(),
        "code": error.code(),
        "retryable": error.retryable(),
    });
    if let ApiError::Validation { field, .. } = error {
        shape["field"] = Value::from(field.as_str());
    }
    json!({ "error": shape })
}
