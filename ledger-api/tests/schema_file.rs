//! `schema.graphql` at the repository root is the printed schema clients generate code from:
//! this test fails when it is stale. Regenerate with `UPDATE_SCHEMA=1 cargo test -p ledger-api
//! --test schema_file`.

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");

#[test]
fn schema_graphql_is_current() {
    let printed = ledger_api::graphql::build_schema(None).sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(SCHEMA_FILE, &printed).expect("write schema.graphql");
    }
    let committed = std::fs::read_to_string(SCHEMA_FILE).unwrap_or_default();
    assert!(
        committed == printed,
        "schema.graphql is stale: run UPDATE_SCHEMA=1 cargo test -p ledger-api --test schema_file"
    );
}

#[test]
fn the_contract_names_are_in_the_schema() {
    let printed = ledger_api::graphql::build_schema(None).sdl();
    for name in [
        "scalar Decimal",
        "scalar Position",
        "scalar UUID",
        "scalar DateTime",
        "scalar JSON",
        "payment(id: UUID!): Payment",
        "events(streamId: UUID, fromPosition: Position, first: Int): [LedgerEvent!]!",
        "recordCaptureFailure(input: RecordCaptureFailureInput!): PaymentResult!",
        "initiatePayment(input: InitiatePaymentInput!): PaymentResult!",
        "recordSettlementBatch(input: RecordSettlementBatchInput!): SettlementResult!",
        "recordPayout(input: RecordPayoutInput!): SettlementResult!",
        "refundableAmount: Decimal!",
        "payments(filter: PaymentFilter, first: Int, after: String",
        "): PaymentConnection!",
        "order(id: String!",
        "disputes(filter: DisputeFilter",
        "settlementBatches(filter: SettlementBatchFilter",
        "balances(merchantId: String!, asOf: DateTime",
        "): [Balance!]!",
        "schemaVersion: Int!",
        "subscription: Subscription",
        "paymentEvents(paymentId: UUID!, fromVersion: Position): LedgerEvent!",
        "ledgerEvents(fromPosition: Position): LedgerEvent!",
        "reconciliationRuns(filter: ReconciliationRunFilter, first: Int, after: String",
        "): ReconciliationRunConnection!",
        "reconciliationRun(id: UUID!",
        "): ReconciliationRun",
        "reconciliationExceptions(filter: ReconciliationExceptionFilter, first: Int, after: String",
        "): ReconciliationExceptionConnection!",
        "resolveReconciliationException(input: ResolveReconciliationExceptionInput!): ReconciliationExceptionResult!",
        "reconciliation: ReconciliationVerdict",
        "importStripePayoutReport(input: ImportStripePayoutReportInput!): ReconciliationImportResult!",
    ] {
        assert!(printed.contains(name), "schema lacks `{name}`");
    }
}
