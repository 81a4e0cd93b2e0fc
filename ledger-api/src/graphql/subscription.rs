//! Subscriptions, served over websockets at `/graphql/ws` (`http::subscriptions`): one
//! payment's events or the global log, first what is recorded, then each event as it commits.
//! Roles and environments are checked as the `events` query checks them.

use std::future::ready;
use std::sync::Arc;

use async_graphql::Context;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use ledger_core::DomainError;
use ledger_store::{RecordedEvent, StreamType};
use uuid::Uuid;

use super::context::{belongs_to, caller, state, visible_history};
use super::scalars::Position;
use super::types::LedgerEvent;
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, IntoGraphql};
use crate::live::ConnectionSlots;

type EventStream = BoxStream<'static, async_graphql::Result<LedgerEvent>>;

#[derive(Default)]
pub struct Subscription;

/// The log as it grows, over a websocket at `/graphql/ws` (graphql-transport-ws), with the API
/// key in the `connection_init` payload: `{"Authorization": "Bearer lk_…"}`. The socket
/// serves these only; a revoked key's connection is closed with 4403.
#[async_graphql::Subscription]
impl Subscription {
    /// One payment's events in version order: its history from `fromVersion` on (all of it
    /// when absent), then each new event as it is recorded. NOT_FOUND when the payment does
    /// not exist in the caller's environment (subscribe once it is initiated: the history
    /// brings everything since). Ends only with an error; resume from the version after the
    /// last one received.
    async fn payment_events(
        &self,
        context: &Context<'_>,
        payment_id: Uuid,
        from_version: Option<Position>,
    ) -> async_graphql::Result<EventStream> {
        payment_events(context, payment_id, from_version)
            .await
            .graphql()
    }

    /// The global log of the caller's environment from `fromPosition` on (from the start when
    /// absent), in position order, then each event as it is recorded. Ends only with an
    /// error; resume from the position after the last one received.
    async fn ledger_events(
        &self,
        context: &Context<'_>,
        from_position: Option<Position>,
    ) -> async_graphql::Result<EventStream> {
        ledger_events(context, from_position).await.graphql()
    }
}

fn to_graphql(item: ApiResult<Arc<RecordedEvent>>) -> async_graphql::Result<LedgerEvent> {
    item.map(|event| LedgerEvent::from(&*event)).graphql()
}

async fn payment_events(
    context: &Context<'_>,
    payment_id: Uuid,
    from_version: Option<Position>,
) -> ApiResult<EventStream> {
    let principal = caller(context, Permission::ReadPaymentHistory)?;
    let app = state(context)?;
    let slot = app.live.reserve(context.data_opt::<ConnectionSlots>())?;
    // Read before the history: every event of the stream at or below it is in the history,
    // so the live part may start after it (or after the history's end, if that is later).
    let head = app.handler.store().head().await?.last_position;
    let history = visible_history(app, &principal, payment_id)
        .await?
        .filter(|history| {
            history
                .first()
                .is_some_and(|event| event.stream_type == StreamType::Payment)
        })
        .ok_or(ApiError::from(DomainError::PaymentNotFound))?;
    let resume = history
        .last()
        .map_or(head, |event| event.position.max(head))
        + 1;
    let from_version = from_version.map_or(1, |version| version.0);
    let history = history
        .into_iter()
        .filter(move |event| event.stream_version >= from_version)
        .map(|event| Ok(Arc::new(event)));
    let live = app.live.follow(resume, slot).try_filter(move |event| {
        ready(event.stream_id == payment_id && belongs_to(event, &principal))
    });
    Ok(stream::iter(history).chain(live).map(to_graphql).boxed())
}

async fn ledger_events(
    context: &Context<'_>,
    from_position: Option<Position>,
) -> ApiResult<EventStream> {
    let principal = caller(context, Permission::ReadGlobalLog)?;
    let app = state(context)?;
    let slot = app.live.reserve(context.data_opt::<ConnectionSlots>())?;
    let from = from_position.map_or(1, |position| position.0);
    Ok(app
        .live
        .follow(from, slot)
        .try_filter(move |event| ready(belongs_to(event, &principal)))
        .map(to_graphql)
        .boxed())
}
