//! The GraphQL document each bulk command runs: the mutation of that name with a full
//! selection of its payload, parsed once. A line's answer is what this document returns, so
//! it is the mutation's own answer by construction.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_graphql::parser::types::ExecutableDocument;

/// The payment and settlement mutations a bulk request may carry.
pub const COMMANDS: [(&str, Payload); 12] = [
    ("initiatePayment", Payload::Payment),
    ("recordAuthorization", Payload::Payment),
    ("capturePayment", Payload::Payment),
    ("recordCaptureFailure", Payload::Payment),
    ("voidPayment", Payload::Payment),
    ("refundPayment", Payload::Payment),
    ("recordRefundOutcome", Payload::Payment),
    ("openDispute", Payload::Payment),
    ("submitDisputeEvidence", Payload::Payment),
    ("resolveDispute", Payload::Payment),
    ("recordSettlementBatch", Payload::Batch),
    ("recordPayout", Payload::Batch),
];

#[derive(Debug, Clone, Copy)]
pub enum Payload {
    Payment,
    Batch,
}

/// Every field of `Payment` a command's caller may read (its `events` need the history
/// permission; the payload's `events` are the ones the command recorded).
const PAYMENT: &str = "payment { id orderId merchantId environment status currency amount \
    authorizedAmount capturedAmount capturableAmount refundedAmount refundPendingAmount \
    disputedAmount refundableAmount captureMode paymentMethod authorizationCode declineCode \
    retryMayHelp declineAdvice { code documented category customerMessage retry nextStep \
    escalation } captures { captureId amount finalCapture settledInBatch } refunds { refundId \
    amount status reason failureReason settledInBatch } disputes { disputeId amount fee reason \
    evidenceDueBy status settledInBatch } version createdAt updatedAt }";

const BATCH: &str = "batch { id merchantId environment currency gross fees reserve net \
    items { paymentId kind itemId gross fee } payouts { payoutId amount status \
    expectedArrivalDate failureReason } version }";

const EVENTS: &str = "events { position eventId streamId streamType version type \
    schemaVersion recordedAt occurredAt payload metadata prevHash hash }";

/// A command's document, parsed.
pub struct Document {
    pub query: String,
    pub parsed: ExecutableDocument,
}

static DOCUMENTS: LazyLock<HashMap<&'static str, Document>> = LazyLock::new(|| {
    COMMANDS
        .iter()
        .filter_map(|(name, payload)| {
            let query = query_text(name, *payload);
            // The texts are ours and parse (a unit test holds them to it); one that did not
            // would make its command unknown rather than stop the server.
            let parsed = async_graphql::parser::parse_query(&query).ok()?;
            Some((*name, Document { query, parsed }))
        })
        .collect()
});

/// The document of the command named `name`, if it is one a bulk request may carry.
pub fn document(name: &str) -> Option<&'static Document> {
    DOCUMENTS.get(name)
}

fn query_text(name: &str, payload: Payload) -> String {
    let input_type = format!("{}{}Input", name[..1].to_uppercase(), &name[1..]);
    let selection = match payload {
        Payload::Payment => PAYMENT,
        Payload::Batch => BATCH,
    };
    format!(
        "mutation Bulk($input: {input_type}!) {{ {name}(input: $input) {{ {selection} {EVENTS} \
         position replayed }} }}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_document_that_parses() {
        for (name, _) in COMMANDS {
            assert!(document(name).is_some(), "{name}");
        }
        assert!(document("importStripePayoutReport").is_none());
    }
}
