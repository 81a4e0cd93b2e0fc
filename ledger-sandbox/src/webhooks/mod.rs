//! Webhooks: every event the sandbox emits is signed as Stripe signs and delivered to each
//! configured endpoint, retried on any non-2xx answer, under a chaos profile.

mod chaos;
mod delivery;
mod signing;

pub use chaos::{Chaos, Plan};
pub use delivery::{spawn_dispatcher, DeliveryStats, Dispatcher, RetryPolicy, StatsView};
pub use signing::signature_header;
