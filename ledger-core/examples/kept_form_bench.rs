//! What a kept state (`ledger_core::kept_form`) costs against its JSON text, the form kept
//! before it (STATE_FORMAT 1): bytes, and time to write and to read back, for a typical
//! payment (initiated, authorized, captured, part refunded) and for the golden file's payment
//! with every part filled. The JSON text is the baseline, measured in the same run.
//!
//! `cargo run --release -p ledger-core --example kept_form_bench [ITERATIONS]`

use std::time::Instant;

use chrono::{TimeZone, Utc};
use ledger_core::ids::*;
use ledger_core::kept_form;
use ledger_core::payment::*;
use ledger_core::text::ShortText;
use ledger_core::{Currency, Money};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: u32 = std::env::args()
        .nth(1)
        .map(|text| text.parse())
        .transpose()?
        .unwrap_or(200_000);
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/states.json"
    ))?)?;
    let every_part: PaymentState = serde_json::from_value(golden["payment"]["state"].clone())?;
    for (name, state) in [("typical payment", typical()?), ("every part", every_part)] {
        let json = serde_json::to_vec(&state)?;
        let kept = kept_form::encode(&state)?;
        let json_write = time(iterations, || serde_json::to_vec(&state).map(drop))?;
        let kept_write = time(iterations, || kept_form::encode(&state).map(drop))?;
        let json_read = time(iterations, || {
            serde_json::from_slice::<PaymentState>(&json).map(drop)
        })?;
        let kept_read = time(iterations, || {
            kept_form::decode::<PaymentState>(&kept).map(drop)
        })?;
        println!(
            "{name}: kept form {} bytes against JSON's {} ({:.2}); written in {kept_write:.2} µs \
             against {json_write:.2} ({:.2}); read back in {kept_read:.2} µs against \
             {json_read:.2} ({:.2})",
            kept.len(),
            json.len(),
            kept.len() as f64 / json.len() as f64,
            kept_write / json_write,
            kept_read / json_read,
        );
    }
    Ok(())
}

/// Mean microseconds of `work` over `iterations` runs.
fn time<E>(iterations: u32, mut work: impl FnMut() -> Result<(), E>) -> Result<f64, E> {
    let started = Instant::now();
    for _ in 0..iterations {
        work()?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations))
}

/// The state of a payment initiated, authorized, captured and part refunded through Stripe.
fn typical() -> Result<PaymentState, Box<dyn std::error::Error>> {
    let usd = |amount: &str| Money::parse(amount, Currency::USD);
    let events = [
        PaymentEvent::PaymentInitiated(PaymentInitiated {
            merchant_id: MerchantId::parse("merchant_3")?,
            order_id: OrderId::parse("order_8f14e45f")?,
            environment: Environment::Test,
            amount: usd("49.90")?,
            capture_mode: CaptureMode::Manual,
            payment_method: Some(ShortText::parse("card")?),
        }),
        PaymentEvent::PaymentAuthorized(PaymentAuthorized {
            authorized_amount: usd("49.90")?,
            authorization_code: Some(ShortText::parse("A1B2C3")?),
            gateway_reference: Some(ShortText::parse("pi_3Mtw9kLkdIwHu7ix0dUjBz3f")?),
            expires_at: Utc.with_ymd_and_hms(2026, 12, 11, 9, 0, 0).single(),
        }),
        PaymentEvent::PaymentCaptured(PaymentCaptured {
            capture_id: CaptureId::parse("ch_3Mtw9kLkdIwHu7ix0snN0B15")?,
            amount: usd("49.90")?,
            final_capture: true,
        }),
        PaymentEvent::RefundRequested(RefundRequested {
            refund_id: RefundId::parse("re_3Mtw9kLkdIwHu7ix0J1kq9nR")?,
            amount: usd("10.00")?,
            reason: Some(ShortText::parse("requested_by_customer")?),
        }),
        PaymentEvent::RefundSucceeded(RefundSucceeded {
            refund_id: RefundId::parse("re_3Mtw9kLkdIwHu7ix0J1kq9nR")?,
            amount: usd("10.00")?,
        }),
    ];
    Ok(events.iter().fold(PaymentState::default(), evolve))
}
