//! A code on every GraphQL error, whichever transport carries it.
//!
//! async-graphql's own errors (syntax, unknown fields, variables of the wrong type, depth and
//! complexity limits) carry no code; interfaces.md promises one on every error, and all of
//! them are the request's fault. As a schema extension this covers `POST /graphql` and the
//! websocket's subscriptions alike; the errors of our resolvers already have their code
//! from `crate::error`, and keep it.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextRequest, NextSubscribe,
};
use async_graphql::Response;
use futures::stream::BoxStream;
use futures::StreamExt;

pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, context: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        with_codes(next.run(context).await)
    }

    fn subscribe<'s>(
        &self,
        context: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(context, stream).map(with_codes).boxed()
    }
}

fn with_codes(mut response: Response) -> Response {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "VALIDATION_ERROR");
            extensions.set("retryable", false);
        }
    }
    response
}
