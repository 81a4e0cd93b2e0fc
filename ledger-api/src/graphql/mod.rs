//! The GraphQL schema of interfaces.md: queries, mutations, subscriptions, their types, and
//! the limits on every request (depth, complexity, page sizes).

pub mod context;
pub mod error_codes;
pub mod mutation;
pub mod parse;
pub mod query;
pub mod read_models;
pub mod reconcile_import;
pub mod reconciliation;
pub mod scalars;
pub mod subscription;
pub mod types;

use async_graphql::{MergedObject, Schema};

pub use context::AppState;
use mutation::MutationRoot;
use query::QueryRoot;
use read_models::ReadModelQuery;
use reconcile_import::ReconciliationImportMutation;
use reconciliation::{ReconciliationMutation, ReconciliationQuery};
use subscription::SubscriptionRoot;

/// Every query: those answered from the log and those answered from the read models.
#[derive(MergedObject, Default)]
pub struct Query(QueryRoot, ReadModelQuery, ReconciliationQuery);

/// Every mutation: payments and settlements, finance's report imports, and resolving
/// reconciliation exceptions. The printed name stays `MutationRoot`, which clients' generated
/// code may know.
#[derive(MergedObject, Default)]
#[graphql(name = "MutationRoot")]
pub struct Mutation(
    MutationRoot,
    ReconciliationImportMutation,
    ReconciliationMutation,
);

pub type LedgerSchema = Schema<Query, Mutation, SubscriptionRoot>;

/// Deeper queries than this are refused before they run.
pub const MAX_QUERY_DEPTH: usize = 12;
/// A rough bound on the work one query may ask for.
pub const MAX_QUERY_COMPLEXITY: usize = 2_000;

pub fn build_schema(state: Option<AppState>) -> LedgerSchema {
    let builder = Schema::build(Query::default(), Mutation::default(), SubscriptionRoot)
        .limit_depth(MAX_QUERY_DEPTH)
        .limit_complexity(MAX_QUERY_COMPLEXITY)
        .extension(error_codes::ErrorCodes);
    match state {
        Some(state) => builder.data(state).finish(),
        None => builder.finish(),
    }
}
