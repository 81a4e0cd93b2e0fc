//! The GraphQL schema of interfaces.md: queries, mutations, subscriptions, their types, and
//! the limits on every request (depth, complexity, page sizes).
//!
//! # Layout
//! - this module: the roots ([`Query`], [`MutationRoot`], [`Subscription`]) merged from the
//!   parts below, the schema and its limits.
//! - [`query`]: `log` (answered from the log itself, never stale), `read_models` (lists and
//!   searches from the read models, with the page and cursor helpers), `reconciliation`.
//! - [`mutation`]: `payments` (payment and settlement commands), `reconcile_import`,
//!   `reconciliation`, and the command context every mutation runs under.
//! - [`notifications`]: notification endpoints, their deliveries and replays (admin).
//! - [`subscription`]: `paymentEvents` and `ledgerEvents`, following the log live.
//! - [`types`]: the GraphQL views of the log's states and events, and of reconciliation
//!   (`types::reconciliation`), each built with `From` or a constructor.
//! - [`loaders`]: the DataLoaders, one query per relation for every node of an answer.
//! - [`context`] (the state and the caller), [`parse`] (raw input to domain types),
//!   [`scalars`], [`error_codes`] (`extensions.code` on every error).
//!
//! One resolver style: every resolver method delegates to one `async fn … -> ApiResult<T>`
//! of its module and converts its error with `.graphql()`.

pub mod context;
pub mod error_codes;
pub mod loaders;
pub mod mutation;
pub mod notifications;
pub mod parse;
pub mod query;
pub mod scalars;
pub mod subscription;
pub mod types;

use async_graphql::{MergedObject, Schema};

pub use context::AppState;
pub use mutation::MutationRoot;
use query::log::LogQuery;
use query::read_models::ReadModelQuery;
use query::reconciliation::ReconciliationQuery;
pub use subscription::Subscription;

/// Every query: those answered from the log and those answered from the read models.
#[derive(MergedObject, Default)]
pub struct Query(
    LogQuery,
    ReadModelQuery,
    ReconciliationQuery,
    notifications::NotificationQuery,
);

pub type LedgerSchema = Schema<Query, MutationRoot, Subscription>;

/// Deeper queries than this are refused before they run. The standard introspection query
/// (graphql-js's, which GraphiQL, Apollo and code generators send, and a test sends) nests
/// deep through `ofType` and fits; the ledger's own types nest far less, and the work of a query is bounded by its
/// complexity, which counts list sizes.
pub const MAX_QUERY_DEPTH: usize = 16;
/// A bound on the work one query may ask for: each field counts one, and a list field counts
/// its selection once per item it may return (its `first`), so aliases that repeat a large
/// page add up instead of riding free.
pub const MAX_QUERY_COMPLEXITY: usize = 10_000;

/// The complexity of a list field: its selection's, times the most items it may return
/// (`first`, or `default` when absent; a `first` out of range is refused later with its own
/// message, and counts as one here).
pub fn list_complexity(first: Option<i32>, default: usize, child_complexity: usize) -> usize {
    let items = first.map_or(default, |first| usize::try_from(first).unwrap_or(1).max(1));
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// [`list_complexity`] of a connection, whose `first` defaults to the page size of every
/// connection.
pub fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    list_complexity(
        first,
        query::read_models::page::DEFAULT_PAGE_SIZE,
        child_complexity,
    )
}

pub fn build_schema(state: Option<AppState>) -> LedgerSchema {
    let builder = Schema::build(Query::default(), MutationRoot::default(), Subscription)
        .limit_depth(MAX_QUERY_DEPTH)
        .limit_complexity(MAX_QUERY_COMPLEXITY)
        .extension(error_codes::ErrorCodes);
    match state {
        Some(state) => builder.data(state).finish(),
        None => builder.finish(),
    }
}
