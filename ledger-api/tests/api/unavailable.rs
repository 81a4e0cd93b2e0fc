//! A read model that cannot be reached for now is UNAVAILABLE, which the client may retry,
//! not INTERNAL.

use std::time::Duration;

use ledger_api::error::ApiError;
use ledger_api::graphql::query::read_models::{disputes, payments, settlement};
use ledger_core::ids::Environment;
use ledger_store::testing::TestDatabase;
use sqlx::postgres::PgPoolOptions;

fn assert_unavailable<T>(result: Result<T, ApiError>) {
    let Err(error) = result else {
        panic!("no connection was to be had, yet the query answered");
    };
    assert_eq!(
        (error.code(), error.retryable()),
        ("UNAVAILABLE", true),
        "{error:?}"
    );
}

/// Every connection of the pool is busy past its acquire timeout: the lists answer
/// UNAVAILABLE (retryable), as the pool timing out says nothing about the request.
#[tokio::test]
async fn a_read_model_pool_that_times_out_is_unavailable() {
    let database = TestDatabase::new().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(200))
        .connect(database.url())
        .await
        .unwrap();
    let held = pool.acquire().await.unwrap();

    assert_unavailable(
        payments::list(&pool, Environment::Test, Default::default(), 20, None).await,
    );
    assert_unavailable(
        disputes::list(&pool, Environment::Test, Default::default(), 20, None).await,
    );
    assert_unavailable(settlement::exceptions(&pool, Environment::Test, None, 3).await);

    drop(held);
    let page = payments::list(&pool, Environment::Test, Default::default(), 20, None)
        .await
        .unwrap();
    assert!(page.edges.is_empty());
}
