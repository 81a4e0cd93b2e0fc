//! Balances per merchant and currency, by journal account, from the journal's read model.
//! Only roles that may read balances (finance, auditor, admin) see it.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use ledger_api::auth::Permission;
use ledger_projections::read_models::journal;
use serde::Deserialize;

use super::html;
use crate::current::{Current, Frame};
use crate::error::ConsoleError;
use crate::ConsoleState;

const MAX_MERCHANT_CHARS: usize = 200;

#[derive(Deserialize, Default)]
pub struct BalancesQuery {
    merchant: Option<String>,
}

pub struct BalanceLine {
    pub merchant_id: String,
    pub currency: String,
    pub account: String,
    pub balance: String,
}

#[derive(Template)]
#[template(path = "balances.html")]
struct BalancesPage {
    frame: Frame,
    merchant: String,
    lines: Vec<BalanceLine>,
}

pub async fn page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(query): Query<BalancesQuery>,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.require(Permission::ReadBalances, "balances")?;
    let merchant = query.merchant.unwrap_or_default().trim().to_owned();
    if merchant.chars().count() > MAX_MERCHANT_CHARS {
        return Err(ConsoleError::BadInput(format!(
            "a merchant id has at most {MAX_MERCHANT_CHARS} characters"
        )));
    }
    // One merchant at a time: the whole table could be any size.
    let balances = if merchant.is_empty() {
        Vec::new()
    } else {
        journal::balances(&state.pool, current.principal.environment, Some(&merchant)).await?
    };
    html(&BalancesPage {
        frame: current.frame("balances"),
        merchant,
        lines: balances
            .iter()
            .map(|balance| BalanceLine {
                merchant_id: balance.merchant_id.clone(),
                currency: balance.currency.clone(),
                account: balance.account.to_string(),
                balance: balance.balance.to_string(),
            })
            .collect(),
    })
}
