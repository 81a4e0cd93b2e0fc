//! Mutations: each parses its input into a ledger-core command, runs it through the command
//! handler under the caller's environment and idempotency key, and returns the new state, the
//! events recorded and the log position. The fingerprint that recognises a retry is the
//! mutation's name and its raw input, so defaults filled in here (generated ids) do not make a
//! retry look like a new request.

use async_graphql::{Context, Enum, InputObject, Json, Object};
use chrono::{DateTime, NaiveDate, Utc};
use ledger_core::error::DomainError;
use ledger_core::ids::{
    CaptureId, DisputeId, MerchantId, OrderId, PaymentId, PayoutId, RefundId, SettlementBatchId,
};
use ledger_core::payment::{
    self, CapturePayment, DisputeOutcome, InitiatePayment, OpenDispute, PaymentCommand,
    PaymentState, RecordAuthorization, RecordCaptureFailure, RecordRefundOutcome,
    RefundOutcome as CoreRefundOutcome, RefundPayment, ResolveDispute, SettledItem,
    SubmitDisputeEvidence, VoidPayment,
};
use ledger_core::settlement::{
    BatchItem, PayoutUpdate, RecordPayout, RecordSettlementBatch, SettlementBatchState,
    SettlementCommand,
};
use ledger_core::{Currency, PositiveMoney};
use ledger_store::commands::{Decision, Handled};
use serde::Serialize;
use uuid::Uuid;

use super::command_context;
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, IntoGraphql};
use crate::graphql::context::{caller, command_handler, state};
use crate::graphql::parse;
use crate::graphql::scalars::{DecimalText, Position};
use crate::graphql::types::{
    CaptureMode, LedgerEvent, Payment, PaymentResult, SettlementBatch, SettlementResult,
};

/// The most items one `recordSettlementBatch` may carry: as many as a batch may hold
/// (interfaces.md), checked here before any payment is read.
pub const MAX_SETTLEMENT_ITEMS_PER_REQUEST: usize = ledger_core::settlement::MAX_SETTLEMENT_ITEMS;

#[derive(InputObject, Serialize)]
pub struct InitiatePaymentInput {
    pub idempotency_key: String,
    pub payment_id: Option<Uuid>,
    pub order_id: String,
    pub merchant_id: String,
    pub amount: DecimalText,
    pub currency: String,
    /// MANUAL when absent or null.
    #[graphql(default_with = "Some(CaptureMode::Manual)")]
    pub capture_mode: Option<CaptureMode>,
    pub payment_method: Option<String>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
pub enum AuthorizationOutcome {
    Approved,
    Declined,
}

#[derive(InputObject, Serialize)]
pub struct RecordAuthorizationInput {
    pub idempotency_key: String,
    pub payment_id: Uuid,
    pub outcome: AuthorizationOutcome,
    pub authorized_amount: Option<DecimalText>,
    pub authorization_code: Option<String>,
    pub gateway_reference: Option<String>,
    pub decline_code: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(InputObject, Serialize)]
pub struct CapturePaymentInput {
    pub idempotency_key: String,
    pub payment_id: Uuid,
    pub amount: Option<DecimalText>,
    pub capture_id: Option<String>,
    /// True when absent or null: the capture closes the authorization.
    #[graphql(default_with = "Some(true)")]
    pub r#final: Option<bool>,
}

#[derive(InputObject, Serialize)]
pub struct RecordCaptureFailureInput {
    pub idempotency_key: String,
    pub payment_id: Uuid,
    /// The capture attempt that failed (generated when absent).
    pub capture_id: Option<String>,
    /// What the attempt tried to capture (default: all that is still capturable).
    pub amount: Option<DecimalText>,
    pub reason: String,
    /// Whether trying again may succeed (default false).
    pub retryable: Option<bool>,
}

#[derive(InputObject, Serialize)]
pub struct VoidPaymentInput {
    pub idempotency_key: String,
    pub payment_id: Uuid,
    pub reason: Option<String>,
}

#[derive(InputObject, Serialize)]
pub struct RefundPaymentInput {
    pub idempotency_key: String,
    pub payment_id: Uuid,
    pub amount: Option<DecimalText>,
    pub refund_id: Option<String>,
    pub reason: Option<String>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
pub enum RefundOutcome {
    Succeeded,
    Failed,
}

#[derive(InputObject, Serialize)]
pub struct RecordRefundOutcomeInput {
    pub idempotency_key: String,
    pub payment_id: Uuid,
    pub refund_id: String,
    pub outcome: RefundOutcome,
    pub failure_reason: Option<String>,
}

#[derive(InputObject, Serialize)]
pub struct OpenDisputeInput {
    pub idempotency_key: String,
    pub payment_id: Uuid,
    pub dispute_id: String,
    pub amount: DecimalText,
    pub reason: String,
    pub evidence_due_by: Option<DateTime<Utc>>,
    pub fee: Option<DecimalText>,
}

#[derive(InputObject, Serialize)]
pub struct SubmitDisputeEvidenceInput {
    pub idempotency_key: String,
    pub payment_id: Uuid,
    pub dispute_id: String,
    pub evidence: Option<Json<serde_json::Value>>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
pub enum ResolveOutcome {
    Won,
    Lost,
}

#[derive(InputObject, Serialize)]
pub struct ResolveDisputeInput {
    pub idempotency_key: String,
    pub payment_id: Uuid,
    pub dispute_id: String,
    pub outcome: ResolveOutcome,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
pub enum SettlementItemKind {
    Capture,
    Refund,
    Dispute,
}

#[derive(InputObject, Serialize)]
pub struct SettlementItemInput {
    pub payment_id: Uuid,
    pub kind: SettlementItemKind,
    pub item_id: String,
    pub gross: DecimalText,
    pub fee: DecimalText,
}

#[derive(InputObject, Serialize)]
pub struct RecordSettlementBatchInput {
    pub idempotency_key: String,
    pub batch_id: Uuid,
    pub merchant_id: String,
    pub currency: String,
    pub items: Vec<SettlementItemInput>,
    pub reserve: Option<DecimalText>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
pub enum PayoutStatusInput {
    Initiated,
    Paid,
    Failed,
}

#[derive(InputObject, Serialize)]
pub struct RecordPayoutInput {
    pub idempotency_key: String,
    pub batch_id: Uuid,
    pub payout_id: String,
    pub amount: DecimalText,
    pub status: PayoutStatusInput,
    pub expected_arrival_date: Option<NaiveDate>,
    pub failure_reason: Option<String>,
}

/// The payment and settlement mutations, merged into [`super::MutationRoot`].
#[derive(Default)]
pub struct PaymentMutation;

#[Object]
impl PaymentMutation {
    /// Starts a payment. `paymentId` is generated when absent.
    async fn initiate_payment(
        &self,
        context: &Context<'_>,
        input: InitiatePaymentInput,
    ) -> async_graphql::Result<PaymentResult> {
        initiate_payment(context, input).await.graphql()
    }

    /// Records the gateway's authorization answer: APPROVED (possibly for less than requested)
    /// or DECLINED with its decline code.
    async fn record_authorization(
        &self,
        context: &Context<'_>,
        input: RecordAuthorizationInput,
    ) -> async_graphql::Result<PaymentResult> {
        record_authorization(context, input).await.graphql()
    }

    /// Captures all or part of the authorization.
    async fn capture_payment(
        &self,
        context: &Context<'_>,
        input: CapturePaymentInput,
    ) -> async_graphql::Result<PaymentResult> {
        capture_payment(context, input).await.graphql()
    }

    /// Records a capture the gateway refused; the authorization stays open for another try.
    async fn record_capture_failure(
        &self,
        context: &Context<'_>,
        input: RecordCaptureFailureInput,
    ) -> async_graphql::Result<PaymentResult> {
        record_capture_failure(context, input).await.graphql()
    }

    async fn void_payment(
        &self,
        context: &Context<'_>,
        input: VoidPaymentInput,
    ) -> async_graphql::Result<PaymentResult> {
        void_payment(context, input).await.graphql()
    }

    /// Refunds all that is refundable, or the amount given. Above the approval threshold only
    /// an admin key may refund.
    async fn refund_payment(
        &self,
        context: &Context<'_>,
        input: RefundPaymentInput,
    ) -> async_graphql::Result<PaymentResult> {
        refund_payment(context, input).await.graphql()
    }

    async fn record_refund_outcome(
        &self,
        context: &Context<'_>,
        input: RecordRefundOutcomeInput,
    ) -> async_graphql::Result<PaymentResult> {
        record_refund_outcome(context, input).await.graphql()
    }

    async fn open_dispute(
        &self,
        context: &Context<'_>,
        input: OpenDisputeInput,
    ) -> async_graphql::Result<PaymentResult> {
        open_dispute(context, input).await.graphql()
    }

    async fn submit_dispute_evidence(
        &self,
        context: &Context<'_>,
        input: SubmitDisputeEvidenceInput,
    ) -> async_graphql::Result<PaymentResult> {
        submit_dispute_evidence(context, input).await.graphql()
    }

    async fn resolve_dispute(
        &self,
        context: &Context<'_>,
        input: ResolveDisputeInput,
    ) -> async_graphql::Result<PaymentResult> {
        resolve_dispute(context, input).await.graphql()
    }

    /// Records a gateway settlement batch and, atomically, the settlement of every item it
    /// names on its payment.
    async fn record_settlement_batch(
        &self,
        context: &Context<'_>,
        input: RecordSettlementBatchInput,
    ) -> async_graphql::Result<SettlementResult> {
        record_settlement_batch(context, input).await.graphql()
    }

    async fn record_payout(
        &self,
        context: &Context<'_>,
        input: RecordPayoutInput,
    ) -> async_graphql::Result<SettlementResult> {
        record_payout(context, input).await.graphql()
    }
}

async fn run_payment(
    context: &Context<'_>,
    mutation: &str,
    input: &impl Serialize,
    idempotency_key: &str,
    payment_id: Uuid,
    command: PaymentCommand,
) -> ApiResult<PaymentResult> {
    let principal = caller(context, Permission::SubmitPaymentCommands)?;
    let command_context = command_context(&principal, mutation, input, idempotency_key)?;
    let handled = command_handler(context)?
        .handle_payment(PaymentId::from_uuid(payment_id), &command, &command_context)
        .await?;
    payment_result(payment_id, handled)
}

/// Runs a payment command that `build` makes from the payment as the log holds it under the
/// stream's turn (an amount in the payment's currency, a default "all that is still …", the
/// refund approval check): one read of the stream, the one the command is decided on.
async fn run_payment_with(
    context: &Context<'_>,
    mutation: &str,
    input: &impl Serialize,
    idempotency_key: &str,
    payment_id: Uuid,
    mut build: impl FnMut(&PaymentState) -> ApiResult<PaymentCommand>,
) -> ApiResult<PaymentResult> {
    let principal = caller(context, Permission::SubmitPaymentCommands)?;
    let command_context = command_context(&principal, mutation, input, idempotency_key)?;
    let handled = command_handler(context)?
        .handle_payment_with(
            PaymentId::from_uuid(payment_id),
            &command_context,
            |state| {
                let command = build(state)?;
                Ok::<_, ApiError>(Decision::of(payment::decide(state, &command)))
            },
        )
        .await?
        .handled()?;
    payment_result(payment_id, handled)
}

fn payment_result(payment_id: Uuid, handled: Handled<PaymentState>) -> ApiResult<PaymentResult> {
    let payment = handled
        .state
        .payment
        .as_ref()
        .ok_or_else(|| ApiError::internal("a payment command left no payment"))?;
    Ok(PaymentResult {
        payment: Payment::new(payment_id, payment, &handled.stream),
        events: handled.events.iter().map(LedgerEvent::from).collect(),
        position: Position(handled.position),
        replayed: handled.replayed,
    })
}

/// The currency of the payment a command is built from: NOT_FOUND when this environment
/// holds no such payment (the handler hides one of the other environment).
fn payment_currency(payment: &PaymentState) -> ApiResult<Currency> {
    payment
        .payment
        .as_ref()
        .map(|payment| payment.currency())
        .ok_or_else(|| ApiError::NotFound("no such payment in this environment".to_owned()))
}

/// An amount given in the payment's currency, if given.
fn payment_amount(
    payment: &PaymentState,
    field: &str,
    text: Option<&DecimalText>,
) -> ApiResult<Option<PositiveMoney>> {
    let Some(text) = text else {
        return Ok(None);
    };
    parse::positive(field, text, payment_currency(payment)?).map(Some)
}

async fn initiate_payment(
    context: &Context<'_>,
    input: InitiatePaymentInput,
) -> ApiResult<PaymentResult> {
    let principal = caller(context, Permission::SubmitPaymentCommands)?;
    let currency = parse::currency(&input.currency)?;
    let command = PaymentCommand::Initiate(InitiatePayment {
        merchant_id: parse::id("merchantId", &input.merchant_id, MerchantId::parse)?,
        order_id: parse::id("orderId", &input.order_id, OrderId::parse)?,
        environment: principal.environment,
        amount: parse::positive("amount", &input.amount, currency)?,
        capture_mode: input.capture_mode.unwrap_or(CaptureMode::Manual).into(),
        payment_method: parse::optional_text("paymentMethod", input.payment_method.as_ref())?,
    });
    // A generated id must be the same on a retry of the same input, or the retry would be a
    // second payment: derive it from the environment and the idempotency key.
    let payment_id = input.payment_id.unwrap_or_else(|| {
        Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("{}:{}", principal.environment, input.idempotency_key.trim()).as_bytes(),
        )
    });
    run_payment(
        context,
        "initiatePayment",
        &input,
        &input.idempotency_key,
        payment_id,
        command,
    )
    .await
}

async fn record_authorization(
    context: &Context<'_>,
    input: RecordAuthorizationInput,
) -> ApiResult<PaymentResult> {
    let declined = match input.outcome {
        AuthorizationOutcome::Approved => None,
        AuthorizationOutcome::Declined => {
            // A decline may come without a code; its category is then unknown, classified as
            // an unknown code is.
            let decline_code = input
                .decline_code
                .as_deref()
                .map(|code| parse::short_text("declineCode", code))
                .transpose()?;
            Some(RecordAuthorization::Declined {
                decline_code,
                category: None,
                retry_may_help: None,
            })
        }
    };
    if let Some(declined) = declined {
        return run_payment(
            context,
            "recordAuthorization",
            &input,
            &input.idempotency_key,
            input.payment_id,
            PaymentCommand::RecordAuthorization(declined),
        )
        .await;
    }
    let authorization_code =
        parse::optional_text("authorizationCode", input.authorization_code.as_ref())?;
    let gateway_reference =
        parse::optional_text("gatewayReference", input.gateway_reference.as_ref())?;
    run_payment_with(
        context,
        "recordAuthorization",
        &input,
        &input.idempotency_key,
        input.payment_id,
        |payment| {
            Ok(PaymentCommand::RecordAuthorization(
                RecordAuthorization::Approved {
                    authorized_amount: payment_amount(
                        payment,
                        "authorizedAmount",
                        input.authorized_amount.as_ref(),
                    )?,
                    authorization_code: authorization_code.clone(),
                    gateway_reference: gateway_reference.clone(),
                    expires_at: input.expires_at,
                },
            ))
        },
    )
    .await
}

async fn capture_payment(
    context: &Context<'_>,
    input: CapturePaymentInput,
) -> ApiResult<PaymentResult> {
    let capture_id = parse::id_or_generated(
        "captureId",
        input.capture_id.as_ref(),
        "cap",
        CaptureId::parse,
    )?;
    run_payment_with(
        context,
        "capturePayment",
        &input,
        &input.idempotency_key,
        input.payment_id,
        |payment| {
            Ok(PaymentCommand::Capture(CapturePayment {
                capture_id: capture_id.clone(),
                amount: payment_amount(payment, "amount", input.amount.as_ref())?,
                final_capture: input.r#final.unwrap_or(true),
            }))
        },
    )
    .await
}

async fn record_capture_failure(
    context: &Context<'_>,
    input: RecordCaptureFailureInput,
) -> ApiResult<PaymentResult> {
    let capture_id = parse::id_or_generated(
        "captureId",
        input.capture_id.as_ref(),
        "cap",
        CaptureId::parse,
    )?;
    let reason = parse::short_text("reason", &input.reason)?;
    run_payment_with(
        context,
        "recordCaptureFailure",
        &input,
        &input.idempotency_key,
        input.payment_id,
        |payment| {
            let amount = match payment_amount(payment, "amount", input.amount.as_ref())? {
                Some(amount) => amount,
                // The default is what is still capturable; with nothing capturable the answer
                // is the rule's, as it would be for a capture.
                None => {
                    let Some(payment) = payment.payment.as_ref() else {
                        return Err(DomainError::PaymentNotFound.into());
                    };
                    PositiveMoney::new(payment.capturable_amount()).map_err(|_| {
                        ApiError::from(DomainError::PaymentNotCapturable {
                            status: payment.status(),
                        })
                    })?
                }
            };
            Ok(PaymentCommand::RecordCaptureFailure(RecordCaptureFailure {
                capture_id: capture_id.clone(),
                amount,
                reason: reason.clone(),
                retryable: input.retryable.unwrap_or(false),
            }))
        },
    )
    .await
}

async fn refund_payment(
    context: &Context<'_>,
    input: RefundPaymentInput,
) -> ApiResult<PaymentResult> {
    let principal = caller(context, Permission::SubmitPaymentCommands)?;
    let thresholds = state(context)?.refund_approval.clone();
    let may_refund_above_threshold = principal.role.may(Permission::RefundAboveThreshold);
    let refund_id =
        parse::id_or_generated("refundId", input.refund_id.as_ref(), "ref", RefundId::parse)?;
    let reason = parse::optional_text("reason", input.reason.as_ref())?;
    run_payment_with(
        context,
        "refundPayment",
        &input,
        &input.idempotency_key,
        input.payment_id,
        |payment| {
            let amount = payment_amount(payment, "amount", input.amount.as_ref())?;
            // Decided on the state this command is decided on, under the stream's turn: no
            // refund can slip in between the check and the append.
            if let (false, Some(payment)) = (may_refund_above_threshold, &payment.payment) {
                let refund =
                    amount.map_or_else(|| payment.refundable_amount(), |amount| amount.money());
                if thresholds.needs_approval(payment, refund) {
                    let threshold = thresholds.threshold(payment.currency());
                    return Err(ApiError::Forbidden(format!(
                        "this payment's refunds in all would exceed {threshold} {}, which needs \
                         approval: ask an admin to issue this refund",
                        payment.currency()
                    )));
                }
            }
            Ok(PaymentCommand::Refund(RefundPayment {
                refund_id: refund_id.clone(),
                amount,
                reason: reason.clone(),
            }))
        },
    )
    .await
}

async fn open_dispute(context: &Context<'_>, input: OpenDisputeInput) -> ApiResult<PaymentResult> {
    let dispute_id = parse::id("disputeId", &input.dispute_id, DisputeId::parse)?;
    let reason = parse::short_text("reason", &input.reason)?;
    run_payment_with(
        context,
        "openDispute",
        &input,
        &input.idempotency_key,
        input.payment_id,
        |payment| {
            let currency = payment_currency(payment)?;
            Ok(PaymentCommand::OpenDispute(OpenDispute {
                dispute_id: dispute_id.clone(),
                amount: parse::positive("amount", &input.amount, currency)?,
                reason: reason.clone(),
                evidence_due_by: input.evidence_due_by,
                fee: input
                    .fee
                    .as_ref()
                    .map(|fee| parse::money("fee", fee, currency))
                    .transpose()?,
            }))
        },
    )
    .await
}

async fn void_payment(context: &Context<'_>, input: VoidPaymentInput) -> ApiResult<PaymentResult> {
    let reason = parse::optional_text("reason", input.reason.as_ref())?;
    let command = PaymentCommand::Void(VoidPayment { reason });
    run_payment(
        context,
        "voidPayment",
        &input,
        &input.idempotency_key,
        input.payment_id,
        command,
    )
    .await
}

async fn record_refund_outcome(
    context: &Context<'_>,
    input: RecordRefundOutcomeInput,
) -> ApiResult<PaymentResult> {
    let command = PaymentCommand::RecordRefundOutcome(RecordRefundOutcome {
        refund_id: parse::id("refundId", &input.refund_id, RefundId::parse)?,
        outcome: match input.outcome {
            RefundOutcome::Succeeded => CoreRefundOutcome::Succeeded,
            RefundOutcome::Failed => CoreRefundOutcome::Failed {
                failure_reason: parse::optional_text(
                    "failureReason",
                    input.failure_reason.as_ref(),
                )?,
            },
        },
    });
    run_payment(
        context,
        "recordRefundOutcome",
        &input,
        &input.idempotency_key,
        input.payment_id,
        command,
    )
    .await
}

async fn submit_dispute_evidence(
    context: &Context<'_>,
    input: SubmitDisputeEvidenceInput,
) -> ApiResult<PaymentResult> {
    let command = PaymentCommand::SubmitDisputeEvidence(SubmitDisputeEvidence {
        dispute_id: parse::id("disputeId", &input.dispute_id, DisputeId::parse)?,
        evidence: input
            .evidence
            .as_ref()
            .map(|evidence| evidence.0.clone())
            .unwrap_or_else(|| serde_json::json!({})),
    });
    run_payment(
        context,
        "submitDisputeEvidence",
        &input,
        &input.idempotency_key,
        input.payment_id,
        command,
    )
    .await
}

async fn resolve_dispute(
    context: &Context<'_>,
    input: ResolveDisputeInput,
) -> ApiResult<PaymentResult> {
    let command = PaymentCommand::ResolveDispute(ResolveDispute {
        dispute_id: parse::id("disputeId", &input.dispute_id, DisputeId::parse)?,
        outcome: match input.outcome {
            ResolveOutcome::Won => DisputeOutcome::Won,
            ResolveOutcome::Lost => DisputeOutcome::Lost,
        },
    });
    run_payment(
        context,
        "resolveDispute",
        &input,
        &input.idempotency_key,
        input.payment_id,
        command,
    )
    .await
}

async fn run_settlement(
    context: &Context<'_>,
    mutation: &str,
    input: &impl Serialize,
    idempotency_key: &str,
    batch_id: Uuid,
    command: SettlementCommand,
) -> ApiResult<SettlementResult> {
    let principal = caller(context, Permission::RecordSettlements)?;
    let command_context = command_context(&principal, mutation, input, idempotency_key)?;
    let handled = command_handler(context)?
        .handle_settlement(
            SettlementBatchId::from_uuid(batch_id),
            &command,
            &command_context,
        )
        .await?;
    settlement_result(batch_id, handled)
}

fn settlement_result(
    batch_id: Uuid,
    handled: Handled<SettlementBatchState>,
) -> ApiResult<SettlementResult> {
    let batch = handled
        .state
        .batch
        .as_ref()
        .ok_or_else(|| ApiError::internal("a settlement command left no batch"))?;
    Ok(SettlementResult {
        batch: SettlementBatch::new(batch_id, batch, &handled.stream),
        events: handled.events.iter().map(LedgerEvent::from).collect(),
        position: Position(handled.position),
        replayed: handled.replayed,
    })
}

async fn record_settlement_batch(
    context: &Context<'_>,
    input: RecordSettlementBatchInput,
) -> ApiResult<SettlementResult> {
    let principal = caller(context, Permission::RecordSettlements)?;
    if input.items.len() > MAX_SETTLEMENT_ITEMS_PER_REQUEST {
        return Err(ApiError::validation(
            "items",
            format!("a batch may carry at most {MAX_SETTLEMENT_ITEMS_PER_REQUEST} items"),
        ));
    }
    let currency = parse::currency(&input.currency)?;
    let items = input
        .items
        .iter()
        .map(|item| {
            let item_id = &item.item_id;
            Ok(BatchItem {
                payment_id: PaymentId::from_uuid(item.payment_id),
                item: match item.kind {
                    SettlementItemKind::Capture => {
                        SettledItem::Capture(parse::id("items.itemId", item_id, CaptureId::parse)?)
                    }
                    SettlementItemKind::Refund => {
                        SettledItem::Refund(parse::id("items.itemId", item_id, RefundId::parse)?)
                    }
                    SettlementItemKind::Dispute => {
                        SettledItem::Dispute(parse::id("items.itemId", item_id, DisputeId::parse)?)
                    }
                },
                gross: parse::positive("items.gross", &item.gross, currency)?,
                fee: parse::money("items.fee", &item.fee, currency)?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let command = SettlementCommand::RecordBatch(RecordSettlementBatch {
        batch_id: SettlementBatchId::from_uuid(input.batch_id),
        merchant_id: parse::id("merchantId", &input.merchant_id, MerchantId::parse)?,
        environment: principal.environment,
        currency,
        items,
        reserve: input
            .reserve
            .as_ref()
            .map(|reserve| parse::money("reserve", reserve, currency))
            .transpose()?,
    });
    run_settlement(
        context,
        "recordSettlementBatch",
        &input,
        &input.idempotency_key,
        input.batch_id,
        command,
    )
    .await
}

async fn record_payout(
    context: &Context<'_>,
    input: RecordPayoutInput,
) -> ApiResult<SettlementResult> {
    let principal = caller(context, Permission::RecordSettlements)?;
    let update = match input.status {
        PayoutStatusInput::Initiated => PayoutUpdate::Initiated {
            expected_arrival_date: input.expected_arrival_date,
        },
        PayoutStatusInput::Paid => PayoutUpdate::Paid,
        PayoutStatusInput::Failed => PayoutUpdate::Failed {
            failure_reason: parse::optional_text("failureReason", input.failure_reason.as_ref())?,
        },
    };
    let payout_id = parse::id("payoutId", &input.payout_id, PayoutId::parse)?;
    let command_context =
        command_context(&principal, "recordPayout", &input, &input.idempotency_key)?;
    // The amount is in the batch's currency: the command is built from the batch read under
    // the stream's turn (the handler hides a batch of the other environment).
    let handled = command_handler(context)?
        .handle_settlement_with(
            SettlementBatchId::from_uuid(input.batch_id),
            &command_context,
            |batch| {
                let currency = batch
                    .batch
                    .as_ref()
                    .map(|batch| batch.currency)
                    .ok_or_else(|| {
                        ApiError::NotFound(
                            "no such settlement batch in this environment".to_owned(),
                        )
                    })?;
                Ok::<_, ApiError>(SettlementCommand::RecordPayout(RecordPayout {
                    payout_id: payout_id.clone(),
                    amount: parse::positive("amount", &input.amount, currency)?,
                    update: update.clone(),
                }))
            },
        )
        .await?;
    settlement_result(input.batch_id, handled)
}
