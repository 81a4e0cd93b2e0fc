//! The sandbox's memory: every object, the events it emitted, the idempotent results it
//! saved. One [`State`] behind one mutex: an API call runs whole under the lock (idempotency
//! check, operation, saved result), so two calls never interleave and no call waits on I/O
//! while holding it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use crate::balance::Books;
use crate::objects::{Charge, Dispute, PaymentIntent, PaymentMethod, Refund};
use crate::webhooks::DeliveryStats;
use crate::EnabledEvents;

/// The API version the sandbox renders objects and events with (the one the pinned official
/// client library sends by default).
pub const API_VERSION: &str = "2026-10-28.endive";

/// Bounds on what clients can make the sandbox hold. Beyond them a create answers 429 and
/// the oldest events and idempotent results are forgotten (Stripe forgets idempotency keys
/// after 24 hours and lists events for 30 days).
pub const MAX_PAYMENT_INTENTS: usize = 200_000;
pub const MAX_EVENTS: usize = 100_000;
pub const MAX_IDEMPOTENT_RESULTS: usize = 100_000;

/// A change the sandbox makes later, on its own, as Stripe does (a pending refund settling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Later {
    SettleRefund { refund: String },
    FailRefund { refund: String },
}

/// How long those later changes wait: Stripe takes minutes to days; the sandbox compresses
/// them so that tests and scenarios see them.
pub const LATER_DELAY: Duration = Duration::from_millis(500);

/// Where a page of a list starts: after an object (the first page when `None`), or before
/// one.
#[derive(Debug, Clone, Copy)]
pub enum Cursor<'a> {
    StartingAfter(Option<&'a str>),
    EndingBefore(&'a str),
}

/// What an events list keeps: one type, and creation times within inclusive bounds.
#[derive(Debug, Clone)]
pub struct EventFilter {
    pub event_type: Option<String>,
    pub created: (i64, i64),
}

/// A saved idempotent result.
#[derive(Debug, Clone)]
pub struct Saved {
    pub fingerprint: String,
    pub status: u16,
    pub body: Value,
}

pub struct State {
    rng: StdRng,
    pub payment_methods: HashMap<String, PaymentMethod>,
    pub intents: HashMap<String, PaymentIntent>,
    /// Intent ids oldest first, for Stripe's newest-first list.
    pub intent_order: Vec<String>,
    pub charges: HashMap<String, Charge>,
    pub refunds: HashMap<String, Refund>,
    pub disputes: HashMap<String, Dispute>,
    events: VecDeque<Value>,
    idempotent: HashMap<String, Saved>,
    idempotent_order: VecDeque<String>,
    /// The request being served, for events' `request` field.
    request: Option<(String, Option<String>)>,
    /// Changes to make later, drained by the caller after each call.
    pub scheduled: Vec<Later>,
    outbox: UnboundedSender<Value>,
    /// What each webhook endpoint receives.
    endpoints: Vec<EnabledEvents>,
    /// Counted pending from the moment an event is emitted, so that "nothing pending" means
    /// every delivery settled, including events still queued or held by chaos.
    stats: Arc<DeliveryStats>,
    /// How far the sandbox clock is ahead of real time, in seconds: it starts at real now and
    /// only moves forward (`POST /sandbox/clock/advance`).
    pub clock_offset: i64,
    /// Balance transactions and payouts.
    pub books: Books,
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

impl State {
    /// `seed` makes the ids reproducible; `outbox` receives every event some endpoint enables,
    /// for delivery.
    pub fn new(
        seed: u64,
        outbox: UnboundedSender<Value>,
        endpoints: Vec<EnabledEvents>,
        stats: Arc<DeliveryStats>,
    ) -> State {
        State {
            rng: StdRng::seed_from_u64(seed ^ 0x05ee_d1d5),
            payment_methods: HashMap::new(),
            intents: HashMap::new(),
            intent_order: Vec::new(),
            charges: HashMap::new(),
            refunds: HashMap::new(),
            disputes: HashMap::new(),
            events: VecDeque::new(),
            idempotent: HashMap::new(),
            idempotent_order: VecDeque::new(),
            request: None,
            scheduled: Vec::new(),
            outbox,
            endpoints,
            stats,
            clock_offset: 0,
            books: Books::default(),
        }
    }

    /// The sandbox clock, in unix seconds: what every object's and event's time is read from.
    /// Webhook signatures keep real time, as the receiver checks them against its own clock.
    pub fn now(&self) -> i64 {
        now().saturating_add(self.clock_offset)
    }

    /// A Stripe-style id: the prefix and 24 random letters and digits.
    pub fn new_id(&mut self, prefix: &str) -> String {
        let suffix: String = (&mut self.rng)
            .sample_iter(Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        format!("{prefix}_{suffix}")
    }

    pub fn digits(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| char::from(b'0' + self.rng.random_range(0..10_u8)))
            .collect()
    }

    /// Marks the start of an API request; returns its `req_…` id.
    pub fn begin_request(&mut self, idempotency_key: Option<String>) -> String {
        let id = self.new_id("req");
        self.request = Some((id.clone(), idempotency_key));
        id
    }

    pub fn end_request(&mut self) {
        self.request = None;
    }

    /// Records an event and hands it to webhook delivery.
    pub fn emit(&mut self, event_type: &str, object: Value, previous_attributes: Option<Value>) {
        self.emit_dated(self.now(), event_type, object, previous_attributes);
    }

    /// Records an event that happened at `created` (sandbox clock) and hands it to delivery.
    pub fn emit_dated(
        &mut self,
        created: i64,
        event_type: &str,
        object: Value,
        previous_attributes: Option<Value>,
    ) {
        let mut data = json!({ "object": object });
        if let Some(previous) = previous_attributes {
            data["previous_attributes"] = previous;
        }
        let (request_id, idempotency_key) = self.request.clone().unzip();
        // As Stripe counts it: the endpoints this event is still to reach.
        let receivers = self
            .endpoints
            .iter()
            .filter(|enabled| enabled.includes(event_type))
            .count();
        let event = json!({
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": false,
            "pending_webhooks": receivers,
            "request": { "id": request_id, "idempotency_key": idempotency_key.flatten() },
            "type": event_type,
        });
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event.clone());
        // Delivery may have stopped (the server is shutting down); the event is still kept.
        if receivers > 0 && self.outbox.send(event).is_ok() {
            self.stats
                .pending
                .fetch_add(receivers as u64, Ordering::SeqCst);
        }
    }

    pub fn event(&self, id: &str) -> Option<&Value> {
        self.events.iter().rev().find(|event| event["id"] == id)
    }

    /// Events newest first, of `filter`'s type and creation times, a page after
    /// `starting_after` or before `ending_before` (event ids), as Stripe pages lists.
    pub fn list_events(
        &self,
        limit: usize,
        cursor: Cursor<'_>,
        filter: &EventFilter,
    ) -> (Vec<Value>, bool) {
        let keep = |event: &&Value| {
            filter
                .event_type
                .as_deref()
                .is_none_or(|wanted| event["type"] == wanted)
                && event["created"]
                    .as_i64()
                    .is_some_and(|created| (filter.created.0..=filter.created.1).contains(&created))
        };
        let mut page = Vec::new();
        let mut has_more = false;
        match cursor {
            Cursor::EndingBefore(cursor) => {
                // The `limit` matching events just newer than the cursor, still newest first.
                let newer = self
                    .events
                    .iter()
                    .skip_while(|event| event["id"] != cursor)
                    .skip(1)
                    .filter(keep);
                for event in newer {
                    if page.len() == limit {
                        has_more = true;
                        break;
                    }
                    page.push(event.clone());
                }
                page.reverse();
            }
            Cursor::StartingAfter(cursor) => {
                let newest_first = self.events.iter().rev();
                let older: Box<dyn Iterator<Item = &Value>> = match cursor {
                    Some(cursor) => Box::new(
                        newest_first
                            .skip_while(move |event| event["id"] != cursor)
                            .skip(1),
                    ),
                    None => Box::new(newest_first),
                };
                for event in older.filter(keep) {
                    if page.len() == limit {
                        has_more = true;
                        break;
                    }
                    page.push(event.clone());
                }
            }
        }
        (page, has_more)
    }

    pub fn saved(&self, key: &str) -> Option<&Saved> {
        self.idempotent.get(key)
    }

    pub fn save(&mut self, key: String, saved: Saved) {
        if self.idempotent_order.len() >= MAX_IDEMPOTENT_RESULTS {
            if let Some(oldest) = self.idempotent_order.pop_front() {
                self.idempotent.remove(&oldest);
            }
        }
        self.idempotent_order.push_back(key.clone());
        self.idempotent.insert(key, saved);
    }

    /// Stripe's `expand`: each named top-level field that holds an id of an object the
    /// sandbox keeps (`latest_charge`, `payment_method`, `charge`, `payment_intent`) is
    /// replaced by the object. Nested paths (`a.b`) are not expanded.
    pub fn expand(&self, mut body: Value, fields: &[String]) -> Value {
        for field in fields {
            let Some(id) = body.get(field).and_then(Value::as_str) else {
                continue;
            };
            let object = match id.split_once('_').map(|(prefix, _)| prefix) {
                Some("ch") => self.charges.get(id).map(Charge::render),
                Some("pm") => self.payment_methods.get(id).map(PaymentMethod::render),
                Some("pi") => self.intents.get(id).map(PaymentIntent::render),
                Some("re") => self.refunds.get(id).map(Refund::render),
                Some("dp") => self.disputes.get(id).map(Dispute::render),
                _ => None,
            };
            if let Some(object) = object {
                body[field.as_str()] = object;
            }
        }
        body
    }

    /// Runs a change scheduled earlier.
    pub fn run_later(&mut self, later: &Later) {
        // No request made it: its events' `request` is null, as Stripe's automatic changes.
        self.request = None;
        match later {
            Later::SettleRefund { refund } => self.settle_refund(refund),
            Later::FailRefund { refund } => self.fail_refund(refund),
        }
    }
}
