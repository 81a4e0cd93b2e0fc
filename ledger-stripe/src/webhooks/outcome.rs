//! [`DeliveryOutcome`]: what became of one Stripe event (see the module docs of
//! [`super`] for each).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryOutcome {
    Applied,
    Duplicate,
    Ignored,
    Parked,
    Conflict,
    Rejected,
    /// Parked past its age limit ([`crate::gateway::parked::MAX_PARKED_AGE`]): never applied.
    Expired,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 7] = [
        DeliveryOutcome::Applied,
        DeliveryOutcome::Duplicate,
        DeliveryOutcome::Ignored,
        DeliveryOutcome::Parked,
        DeliveryOutcome::Conflict,
        DeliveryOutcome::Rejected,
        DeliveryOutcome::Expired,
    ];

    /// The stored name and metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Applied => "applied",
            DeliveryOutcome::Duplicate => "duplicate",
            DeliveryOutcome::Ignored => "ignored",
            DeliveryOutcome::Parked => "parked",
            DeliveryOutcome::Conflict => "conflict",
            DeliveryOutcome::Rejected => "rejected",
            DeliveryOutcome::Expired => "expired",
        }
    }

    /// Final outcomes are never revisited: a repeated delivery of such an event changes
    /// nothing. Parked, conflicting and rejected events are looked at again when they come
    /// back, since what they lacked may exist by then. An expired event is final too: it
    /// was given up on, and applying it days late is what its expiry prevents.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryOutcome::Applied
                | DeliveryOutcome::Duplicate
                | DeliveryOutcome::Ignored
                | DeliveryOutcome::Expired
        )
    }
}

impl fmt::Display for DeliveryOutcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for DeliveryOutcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        DeliveryOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
            .ok_or_else(|| format!("unknown delivery outcome {text:?}"))
    }
}
