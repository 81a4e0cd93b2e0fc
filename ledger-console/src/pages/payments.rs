//! Payment lookup: by payment id, order id, Stripe PaymentIntent id (through the webhook
//! endpoint's PaymentIntent link) or merchant, from the read models; and one
//! payment with its amounts, timeline (its own stream, read by id), captures and their
//! settlement batch and payouts, refunds, webhook deliveries and the playbook's advice for a
//! decline.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use ledger_api::auth::Permission;
use ledger_core::ids::PaymentId;
use ledger_core::payment::PaymentStatus;
use ledger_projections::read_models::payments::{self, PaymentFilter, PaymentRow};
use ledger_projections::read_models::settlement;
use ledger_store::RecordedEvent;
use ledger_stripe::webhooks::{payment_of_intent, recent_deliveries, DeliveryFilter};
use serde::Deserialize;
use uuid::Uuid;

use super::html;
use crate::csv_download::{csv_response, wants_csv};
use crate::current::{Current, Frame};
use crate::error::ConsoleError;
use crate::ConsoleState;

/// Payments one search lists at most.
pub const SEARCH_LIMIT: usize = 50;
/// The longest search text accepted.
const MAX_QUERY_CHARS: usize = 200;
/// Webhook deliveries shown for one payment at most.
const DELIVERY_LIMIT: u32 = 50;

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    by: Option<String>,
    q: Option<String>,
    format: Option<String>,
}

/// What a search looks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SearchBy {
    Order,
    Payment,
    Intent,
    Merchant,
}

impl SearchBy {
    fn parse(text: Option<&str>) -> Result<SearchBy, ConsoleError> {
        match text.unwrap_or("order") {
            "order" => Ok(SearchBy::Order),
            "payment" => Ok(SearchBy::Payment),
            "intent" => Ok(SearchBy::Intent),
            "merchant" => Ok(SearchBy::Merchant),
            other => Err(ConsoleError::BadInput(format!(
                "search by order, payment, intent or merchant, not {other:?}"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            SearchBy::Order => "order",
            SearchBy::Payment => "payment",
            SearchBy::Intent => "intent",
            SearchBy::Merchant => "merchant",
        }
    }
}

/// A payment as a row of the results.
pub struct PaymentLine {
    pub id: String,
    pub order_id: String,
    pub merchant_id: String,
    pub status: &'static str,
    pub amount: String,
    pub created_at: String,
}

impl From<&PaymentRow> for PaymentLine {
    fn from(row: &PaymentRow) -> Self {
        PaymentLine {
            id: row.payment_id.to_string(),
            order_id: row.order_id.clone(),
            merchant_id: row.merchant_id.clone(),
            status: row.status.as_str(),
            amount: money(row.requested_amount, &row.currency),
            created_at: time(row.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "payments.html")]
struct SearchPage {
    frame: Frame,
    by: &'static str,
    q: String,
    searched: bool,
    results: Vec<PaymentLine>,
    limit: usize,
    /// The same search as a CSV download.
    csv_href: String,
}

pub async fn search(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.require(Permission::ReadPayments, "payments")?;
    let by = SearchBy::parse(query.by.as_deref())?;
    let q = query.q.unwrap_or_default().trim().to_owned();
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(ConsoleError::BadInput(format!(
            "a search has at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let environment = current.principal.environment;
    let rows = if q.is_empty() {
        Vec::new()
    } else {
        match by {
            SearchBy::Payment => {
                let id = Uuid::parse_str(&q).map_err(|_| {
                    ConsoleError::BadInput(format!("{q:?} is not a payment id (a UUID)"))
                })?;
                payments::payments_by_id(&state.pool, environment, &[id]).await?
            }
            SearchBy::Intent => {
                // Linked when a Stripe webhook of the PaymentIntent named the payment.
                let linked = payment_of_intent(&state.pool, environment, &q)
                    .await
                    .map_err(|error| ConsoleError::Internal(error.to_string()))?;
                match linked {
                    Some(id) => {
                        payments::payments_by_id(&state.pool, environment, &[id.as_uuid()]).await?
                    }
                    None => Vec::new(),
                }
            }
            SearchBy::Order | SearchBy::Merchant => {
                let filter = PaymentFilter {
                    order_id: (by == SearchBy::Order).then(|| q.clone()),
                    merchant_id: (by == SearchBy::Merchant).then(|| q.clone()),
                    ..PaymentFilter::default()
                };
                payments::list_payments(&state.pool, environment, &filter, None, SEARCH_LIMIT)
                    .await?
            }
        }
    };
    let results: Vec<PaymentLine> = rows.iter().map(PaymentLine::from).collect();
    if wants_csv(query.format.as_deref())? {
        return csv_response(
            "payments.csv",
            &[
                "payment_id",
                "order_id",
                "merchant_id",
                "status",
                "amount",
                "created_at",
            ],
            results.iter().map(|line| {
                vec![
                    line.id.clone(),
                    line.order_id.clone(),
                    line.merchant_id.clone(),
                    line.status.to_owned(),
                    line.amount.clone(),
                    line.created_at.clone(),
                ]
            }),
        );
    }
    let csv_href = format!(
        "/console/payments?{}",
        super::exceptions::query_string(&[
            ("by", by.as_str().to_owned()),
            ("q", q.clone()),
            ("format", "csv".to_owned()),
        ])
    );
    html(&SearchPage {
        csv_href,
        frame: current.frame("payments"),
        by: by.as_str(),
        searched: !q.is_empty(),
        q,
        results,
        limit: SEARCH_LIMIT,
    })
}

/// One event of the payment's timeline.
pub struct TimelineEntry {
    pub version: u64,
    pub what: String,
    pub when: String,
    pub who: String,
    pub idempotency_key: String,
    pub gateway_reference: String,
}

impl From<&RecordedEvent> for TimelineEntry {
    fn from(event: &RecordedEvent) -> Self {
        let text = |value: &serde_json::Value, field: &str| {
            value
                .get(field)
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let actor = text(&event.metadata, "actor_id");
        let role = text(&event.metadata, "actor_role");
        TimelineEntry {
            version: event.stream_version,
            what: event.event_type.clone(),
            when: time(event.recorded_at),
            who: if role.is_empty() {
                actor
            } else {
                format!("{role} {actor}")
            },
            idempotency_key: text(&event.metadata, "idempotency_key"),
            gateway_reference: text(&event.payload, "gateway_reference"),
        }
    }
}

pub struct CaptureLine {
    pub capture_id: String,
    pub amount: String,
    pub captured_at: String,
    pub batch: Option<String>,
}

pub struct PayoutLine {
    pub batch: String,
    pub payout_id: String,
    pub amount: String,
    pub status: &'static str,
}

pub struct RefundLine {
    pub refund_id: String,
    pub amount: String,
    pub status: &'static str,
    pub requested_at: String,
}

pub struct DeliveryLine {
    pub stripe_event_id: String,
    pub event_type: String,
    pub outcome: &'static str,
    pub detail: String,
    pub delivery_count: u32,
    pub last_received_at: String,
}

pub struct AdviceView {
    pub code: String,
    pub meaning: &'static str,
    pub customer_message: &'static str,
    pub retry: &'static str,
    pub next_step: &'static str,
    pub escalation: &'static str,
}

#[derive(Template)]
#[template(path = "payment.html")]
struct DetailPage {
    frame: Frame,
    payment: PaymentLine,
    amounts: Vec<(&'static str, String)>,
    gateway_reference: String,
    decline: Option<AdviceView>,
    timeline: Option<Vec<TimelineEntry>>,
    captures: Vec<CaptureLine>,
    payouts: Option<Vec<PayoutLine>>,
    refunds: Vec<RefundLine>,
    deliveries: Option<Vec<DeliveryLine>>,
}

pub async fn detail(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let current = Current::of(&state, &headers).await?;
    current.require(Permission::ReadPayments, "payments")?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| ConsoleError::BadInput(format!("{id:?} is not a payment id (a UUID)")))?;
    let environment = current.principal.environment;
    let row = payments::payments_by_id(&state.pool, environment, &[id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ConsoleError::NotFound(format!("no payment {id} in this environment")))?;
    let in_currency = |amount: rust_decimal::Decimal| money(amount, &row.currency);
    let amounts = vec![
        ("Requested", in_currency(row.requested_amount)),
        ("Authorized", in_currency(row.authorized_amount)),
        ("Captured", in_currency(row.captured_amount)),
        ("Capturable", in_currency(row.capturable_amount)),
        ("Refunded", in_currency(row.refunded_amount)),
        ("Refund pending", in_currency(row.refund_pending_amount)),
        ("Disputed", in_currency(row.disputed_amount)),
        ("Refundable", in_currency(row.refundable_amount)),
    ];
    let decline = (row.status == PaymentStatus::Declined).then(|| {
        let advice = ledger_core::playbook::advice_or_fallback(row.decline_code.as_deref());
        AdviceView {
            code: row
                .decline_code
                .clone()
                .unwrap_or_else(|| "none given".into()),
            meaning: advice.meaning,
            customer_message: advice.customer_message,
            retry: advice.retry.explained(),
            next_step: advice.next_step.as_str(),
            escalation: advice.escalation.as_str(),
        }
    });
    // The payment's own stream, read by its id: its history, not a scan of the log.
    let timeline = if current.may(Permission::ReadPaymentHistory) {
        let events = state.handler.store().read_stream(id, 1).await?;
        Some(events.iter().map(TimelineEntry::from).collect())
    } else {
        None
    };
    let captures = payments::captures_of(&state.pool, &[id]).await?;
    let batch_ids: Vec<Uuid> = captures
        .iter()
        .filter_map(|capture| capture.settled_batch_id)
        .collect();
    let payouts = if current.may(Permission::ReadSettlements) {
        let rows = settlement::payouts_of(&state.pool, &batch_ids).await?;
        Some(
            rows.iter()
                .map(|payout| PayoutLine {
                    batch: payout.batch_id.to_string(),
                    payout_id: payout.payout_id.clone(),
                    amount: money(payout.amount, &payout.currency),
                    status: payout.status.as_str(),
                })
                .collect(),
        )
    } else {
        None
    };
    let refunds = payments::refunds_of(&state.pool, &[id]).await?;
    let deliveries = if current.may(Permission::ReadOrdersAndDisputes) {
        let filter = DeliveryFilter {
            stripe_event_id: None,
            payment_id: Some(PaymentId::from_uuid(id)),
        };
        let rows = recent_deliveries(&state.pool, environment, &filter, DELIVERY_LIMIT)
            .await
            .map_err(|error| ConsoleError::Internal(error.to_string()))?;
        Some(
            rows.iter()
                .map(|delivery| DeliveryLine {
                    stripe_event_id: delivery.stripe_event_id.clone(),
                    event_type: delivery.event_type.clone(),
                    outcome: delivery.outcome.as_str(),
                    detail: delivery.detail.clone().unwrap_or_default(),
                    delivery_count: delivery.delivery_count,
                    last_received_at: time(delivery.last_received_at),
                })
                .collect(),
        )
    } else {
        None
    };
    html(&DetailPage {
        frame: current.frame("payments"),
        payment: PaymentLine::from(&row),
        amounts,
        gateway_reference: row.gateway_reference.clone().unwrap_or_default(),
        decline,
        timeline,
        captures: captures
            .iter()
            .map(|capture| CaptureLine {
                capture_id: capture.capture_id.clone(),
                amount: money(capture.amount, &capture.currency),
                captured_at: time(capture.captured_at),
                batch: capture.settled_batch_id.map(|batch| batch.to_string()),
            })
            .collect(),
        payouts,
        refunds: refunds
            .iter()
            .map(|refund| RefundLine {
                refund_id: refund.refund_id.clone(),
                amount: money(refund.amount, &refund.currency),
                status: refund.status.as_str(),
                requested_at: time(refund.requested_at),
            })
            .collect(),
        deliveries,
    })
}

/// An amount at its currency's scale (`0.00 USD`, `500 JPY`), and its code.
pub fn money(amount: rust_decimal::Decimal, currency: &str) -> String {
    let mut amount = amount;
    if let Ok(known) = ledger_core::currency::Currency::parse(currency) {
        if amount.scale() < known.minor_units() {
            amount.rescale(known.minor_units());
        }
    }
    format!("{amount} {currency}")
}

/// Times as people read them, to the second, in UTC.
pub fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}
