//! Identifiers, each a type of its own so that a refund id cannot be passed where a capture id
//! is expected, and each validated when it is made.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::stored::stored_names;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} may contain only printable ASCII characters without spaces")]
    InvalidCharacters { kind: &'static str },
    #[error("{kind} `{text}` is not a UUID")]
    NotAUuid { kind: &'static str, text: String },
}

/// The longest textual identifier we store: gateway ids are far shorter, and a bound keeps
/// logs and indexes sane.
pub const MAX_ID_LENGTH: usize = 128;

fn validate_text_id(kind: &'static str, text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if text.len() > MAX_ID_LENGTH {
        return Err(IdError::TooLong {
            kind,
            max: MAX_ID_LENGTH,
        });
    }
    if !text.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(IdError::InvalidCharacters { kind });
    }
    Ok(())
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: impl Into<String>) -> Result<Self, IdError> {
                let text = text.into();
                validate_text_id($kind, &text)?;
                Ok(Self(text))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Self::parse(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn parse(text: &str) -> Result<Self, IdError> {
                Uuid::parse_str(text).map(Self).map_err(|_| IdError::NotAUuid {
                    kind: $kind,
                    text: text.chars().take(64).collect(),
                })
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(formatter)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

uuid_id!(
    /// A payment: the id of its stream.
    PaymentId,
    "payment id"
);
uuid_id!(
    /// A settlement batch: the id of its stream.
    SettlementBatchId,
    "settlement batch id"
);
uuid_id!(
    /// A reconciliation run: one imported report, the id of its stream.
    ReconciliationRunId,
    "reconciliation run id"
);
uuid_id!(
    /// One finding of a reconciliation run, unique across runs.
    ReconciliationExceptionId,
    "reconciliation exception id"
);
text_id!(
    /// The merchant a payment belongs to.
    MerchantId,
    "merchant id"
);
text_id!(
    /// The merchant's order that a payment pays for.
    OrderId,
    "order id"
);
text_id!(
    /// One capture of a payment (several partial captures may exist).
    CaptureId,
    "capture id"
);
text_id!(
    /// One refund of a payment.
    RefundId,
    "refund id"
);
text_id!(
    /// One dispute (chargeback) of a payment.
    DisputeId,
    "dispute id"
);
text_id!(
    /// A payout that moves a settlement batch's net to the merchant's bank.
    PayoutId,
    "payout id"
);

/// Which world a payment lives in. A `test` key never sees or touches `live` data. The text of
/// each (`as_str`, and its JSON form) is what the log stores; idempotency keys are scoped to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Test,
    Live,
}

stored_names!(Environment, "environment" {
    Test => "test",
    Live => "live",
});

impl fmt::Display for Environment {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
