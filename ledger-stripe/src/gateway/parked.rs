//! How long an event that arrived before what it depends on may wait.
//!
//! Stripe resends an event for up to three days; a prerequisite that has not arrived after
//! that is not late, it is missing (a payment created in another account, a payout of a
//! report that will never be imported). Retrying such an event for ever would hide it from
//! support and let a fact of long ago land on a payment that has moved on since, so past
//! [`MAX_PARKED_AGE`] it is given up on: its delivery becomes `expired` for a person to
//! look at, and it is never applied.

use chrono::{DateTime, Duration, Utc};

/// The age limit of a parked event, counted from when it was first parked.
pub const MAX_PARKED_AGE: Duration = Duration::hours(72);

/// Whether an event parked at `parked_at` has waited past [`MAX_PARKED_AGE`] at `now`.
pub fn parked_too_long(parked_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now.signed_duration_since(parked_at) > MAX_PARKED_AGE
}

/// Events parked before this instant have waited past [`MAX_PARKED_AGE`] at `now`: the
/// bound the store's expiry statement checks again, so an event parked anew meanwhile stays.
pub fn expiry_cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now - MAX_PARKED_AGE
}

/// The start of an expired delivery's detail; the reason it waited follows.
pub const EXPIRY_DETAIL_PREFIX: &str =
    "parked for more than 72 hours without what it waits for, so never applied; it waited because: ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_expires_only_past_the_age_limit() {
        let parked_at = Utc::now();
        assert!(!parked_too_long(parked_at, parked_at));
        assert!(!parked_too_long(parked_at, parked_at + MAX_PARKED_AGE));
        assert!(parked_too_long(
            parked_at,
            parked_at + MAX_PARKED_AGE + Duration::seconds(1)
        ));
        // A clock that went back never expires anything.
        assert!(!parked_too_long(
            parked_at,
            parked_at - Duration::hours(100)
        ));
    }

    #[test]
    fn the_cutoff_and_the_detail_agree_with_the_limit() {
        let now = Utc::now();
        assert!(!parked_too_long(expiry_cutoff(now), now));
        assert!(parked_too_long(
            expiry_cutoff(now) - Duration::seconds(1),
            now
        ));
        assert!(EXPIRY_DETAIL_PREFIX.contains(&format!("{} hours", MAX_PARKED_AGE.num_hours())));
    }
}
