//! Balance, balance transactions, payouts, the sandbox clock and the payout reconciliation
//! report.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Extract};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::json;

use super::{lock, no_params, read, write, Shared};
use crate::api_error::ApiError;
use crate::auth::ApiKey;
use crate::balance::{page, BalanceTransaction, Payout};
use crate::params::Params;

const TRANSACTION_TYPES: &[&str] = &["charge", "refund", "refund_failure", "adjustment", "payout"];
const PAYOUT_STATUSES: &[&str] = &["pending", "paid", "failed", "canceled", "in_transit"];

pub fn routes(router: Router<Shared>) -> Router<Shared> {
    router
        .route("/v1/balance", get(balance))
        .route("/v1/balance_transactions", get(list_transactions))
        .route("/v1/balance_transactions/{id}", get(retrieve_transaction))
        .route("/v1/payouts", get(list_payouts))
        .route("/v1/payouts/{id}", get(retrieve_payout))
        .route("/sandbox/clock", get(clock))
        .route("/sandbox/clock/advance", post(advance_clock))
        .route(
            "/sandbox/reports/payout_reconciliation.csv",
            get(payout_report),
        )
}

async fn balance(Extract(app): Extract<Shared>, RawQuery(query): RawQuery) -> Response {
    read(&app, query, |state, params| {
        no_params(params)?;
        Ok(state.books.balance(state.now()))
    })
}

/// `limit` (1 to 100, default 10) and `starting_after`, as every Stripe list takes them.
fn list_params(params: &mut Params) -> Result<(usize, Option<String>), ApiError> {
    params.ignore_common();
    let limit = params.integer("limit", 1..=100)?.unwrap_or(10);
    Ok((limit, params.text("starting_after")?))
}

async fn list_transactions(Extract(app): Extract<Shared>, RawQuery(query): RawQuery) -> Response {
    read(&app, query, |state, mut params| {
        let (limit, starting_after) = list_params(&mut params)?;
        let payout = params.text("payout")?;
        let kind = params.choice("type", TRANSACTION_TYPES)?;
        params.finish()?;
        let (items, has_more) = page(
            state.books.transactions.iter().rev(),
            |transaction: &BalanceTransaction| transaction.id.as_str(),
            |transaction| {
                payout
                    .as_deref()
                    .is_none_or(|payout| transaction.payout.as_deref() == Some(payout))
                    && kind
                        .as_deref()
                        .is_none_or(|kind| transaction.kind.type_name() == kind)
            },
            limit,
            starting_after.as_deref(),
        );
        let now = state.now();
        let data: Vec<_> = items.into_iter().map(|item| item.render(now)).collect();
        Ok(
            json!({ "object": "list", "data": data, "has_more": has_more, "url": "/v1/balance_transactions" }),
        )
    })
}

async fn retrieve_transaction(
    Extract(app): Extract<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    read(&app, query, |state, params| {
        no_params(params)?;
        state
            .books
            .transaction(&id)
            .map(|transaction| transaction.render(state.now()))
            .ok_or_else(|| ApiError::resource_missing("balance_transaction", &id))
    })
}

async fn list_payouts(Extract(app): Extract<Shared>, RawQuery(query): RawQuery) -> Response {
    read(&app, query, |state, mut params| {
        let (limit, starting_after) = list_params(&mut params)?;
        let status = params.choice("status", PAYOUT_STATUSES)?;
        params.finish()?;
        let (items, has_more) = page(
            state.books.payouts.iter().rev(),
            |payout: &Payout| payout.id.as_str(),
            |payout| {
                status
                    .as_deref()
                    .is_none_or(|status| payout.status == status)
            },
            limit,
            starting_after.as_deref(),
        );
        let data: Vec<_> = items.into_iter().map(Payout::render).collect();
        Ok(json!({ "object": "list", "data": data, "has_more": has_more, "url": "/v1/payouts" }))
    })
}

async fn retrieve_payout(
    Extract(app): Extract<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    read(&app, query, |state, params| {
        no_params(params)?;
        state
            .books
            .payout(&id)
            .map(Payout::render)
            .ok_or_else(|| ApiError::resource_missing("payout", &id))
    })
}

async fn clock(Extract(app): Extract<Shared>) -> Response {
    axum::Json(lock(&app).clock()).into_response()
}

async fn advance_clock(
    Extract(app): Extract<Shared>,
    Extension(key): Extension<ApiKey>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(
        &app,
        &key,
        &headers,
        "/sandbox/clock/advance",
        &body,
        |state, params| state.advance_clock(params),
    )
}

async fn payout_report(Extract(app): Extract<Shared>, RawQuery(query): RawQuery) -> Response {
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(error) => return error.into_response(),
    };
    match lock(&app).payout_report(params) {
        Ok(csv) => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response(),
        Err(error) => error.into_response(),
    }
}
