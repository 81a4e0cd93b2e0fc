//! Money is exact: amounts keep their currency's scale, bad input is refused with a reason,
//! arithmetic never mixes currencies or leaves the range, and minor units convert exactly.

use ledger_core::{Currency, Money, MoneyError, PositiveMoney};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::str::FromStr;

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).expect("decimal literal")
}

#[test]
fn amounts_take_their_currency_scale() {
    let amount = Money::parse("10.5", Currency::USD).expect("valid");
    assert_eq!(amount.amount().to_string(), "10.50");
    assert_eq!(
        Money::parse("500", Currency::JPY)
            .expect("valid")
            .amount()
            .to_string(),
        "500"
    );
    assert_eq!(
        Money::parse("1.5", Currency::BHD)
            .expect("valid")
            .amount()
            .to_string(),
        "1.500"
    );
    assert_eq!(
        Money::parse("10.500", Currency::USD)
            .expect("trailing zeros are exact")
            .amount()
            .to_string(),
        "10.50"
    );
}

#[test]
fn too_many_decimal_places_are_refused_never_rounded() {
    for (text, currency) in [
        ("10.505", Currency::USD),
        ("1.5", Currency::JPY),
        ("0.0001", Currency::KWD),
        ("0.001", Currency::EUR),
    ] {
        assert!(
            matches!(
                Money::parse(text, currency),
                Err(MoneyError::TooManyDecimalPlaces { .. })
            ),
            "{text} {currency}"
        );
    }
}

#[test]
fn malformed_amounts_are_refused() {
    for text in [
        "", "abc", "1e5", "1.2.3", " 10", "10 ", "+5", "--1", ".", "1,00", "NaN", "∞",
    ] {
        assert!(
            matches!(
                Money::parse(text, Currency::USD),
                Err(MoneyError::NotADecimal { .. })
            ),
            "{text:?} should be refused"
        );
    }
}

#[test]
fn commands_need_positive_amounts() {
    for text in ["0", "0.00", "-0.01", "-100"] {
        assert!(
            matches!(
                PositiveMoney::parse(text, Currency::USD),
                Err(MoneyError::NotPositive { .. })
            ),
            "{text}"
        );
    }
    assert!(PositiveMoney::parse("0.01", Currency::USD).is_ok());
}

#[test]
fn huge_amounts_are_refused() {
    let max = Money::MAX_MAJOR_UNITS.to_string();
    assert!(Money::parse(&max, Currency::USD).is_ok());
    let above = format!("{max}.01");
    assert!(matches!(
        Money::parse(&above, Currency::USD),
        Err(MoneyError::OutOfRange { .. })
    ));
    assert!(Money::parse("79228162514264337593543950335", Currency::USD).is_err());
    assert!(Money::parse(&"9".repeat(100), Currency::USD).is_err());
}

#[test]
fn unknown_currency_codes_are_refused() {
    for code in ["", "XXX", "usdx", "US", "€", "BTC"] {
        assert!(
            matches!(
                Currency::parse(code),
                Err(MoneyError::UnknownCurrency { .. })
            ),
            "{code:?}"
        );
    }
    let json = r#"{"amount": "1.00", "currency": "ABC"}"#;
    assert!(serde_json::from_str::<Money>(json).is_err());
}

#[test]
fn arithmetic_refuses_mixed_currencies_and_overflow() {
    let dollars = Money::parse("1.00", Currency::USD).expect("valid");
    let euros = Money::parse("1.00", Currency::EUR).expect("valid");
    assert!(matches!(
        dollars.checked_add(euros),
        Err(MoneyError::CurrencyMismatch { .. })
    ));
    assert!(matches!(
        dollars.checked_sub(euros),
        Err(MoneyError::CurrencyMismatch { .. })
    ));
    let max = Money::new(Decimal::from(Money::MAX_MAJOR_UNITS), Currency::USD).expect("valid");
    assert!(matches!(
        max.checked_add(dollars),
        Err(MoneyError::OutOfRange { .. })
    ));
    assert_eq!(
        dollars.checked_sub(dollars).expect("same currency"),
        Money::zero(Currency::USD)
    );
}

#[test]
fn gateway_minor_units_convert_exactly() {
    assert_eq!(
        Money::from_minor_units(1099, Currency::USD)
            .expect("valid")
            .amount(),
        decimal("10.99")
    );
    assert_eq!(
        Money::from_minor_units(500, Currency::JPY)
            .expect("valid")
            .amount(),
        decimal("500")
    );
    assert_eq!(
        Money::from_minor_units(1234, Currency::KWD)
            .expect("valid")
            .amount(),
        decimal("1.234")
    );
    assert!(Money::from_minor_units(i64::MAX, Currency::USD).is_err());
}

#[test]
fn the_wire_shape_carries_amounts_as_strings() {
    let amount = Money::parse("10.5", Currency::USD).expect("valid");
    let json = serde_json::to_value(amount).expect("serializes");
    assert_eq!(
        json,
        serde_json::json!({"amount": "10.50", "currency": "USD"})
    );
    assert!(serde_json::from_str::<Money>(r#"{"amount": 10.5, "currency": "USD"}"#).is_err());
    assert!(serde_json::from_str::<Money>(r#"{"amount": "10.505", "currency": "USD"}"#).is_err());
    assert!(
        serde_json::from_str::<PositiveMoney>(r#"{"amount": "0.00", "currency": "USD"}"#).is_err()
    );
}

#[test]
fn negative_zero_is_zero() {
    let negative_zero = Money::parse("-0.00", Currency::USD).expect("valid");
    assert_eq!(negative_zero, Money::zero(Currency::USD));
    assert_eq!(negative_zero.amount().to_string(), "0.00");
}

fn any_currency() -> impl Strategy<Value = Currency> {
    let all: Vec<Currency> = Currency::all().collect();
    proptest::sample::select(all)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn minor_units_round_trip_exactly(
        currency in any_currency(),
        minor in -1_000_000_000_000i64..=1_000_000_000_000i64,
    ) {
        let money = Money::from_minor_units(minor, currency).expect("in range");
        prop_assert_eq!(money.to_minor_units(), minor);
        prop_assert_eq!(money.amount().scale(), currency.minor_units());
        let reparsed = Money::parse(&money.amount().to_string(), currency).expect("reparses");
        prop_assert_eq!(reparsed, money);
        let json = serde_json::to_string(&money).expect("serializes");
        prop_assert_eq!(serde_json::from_str::<Money>(&json).expect("deserializes"), money);
    }

    #[test]
    fn addition_and_subtraction_are_exact_inverses(
        currency in any_currency(),
        left in -1_000_000_000i64..1_000_000_000,
        right in -1_000_000_000i64..1_000_000_000,
    ) {
        let left = Money::from_minor_units(left, currency).expect("in range");
        let right = Money::from_minor_units(right, currency).expect("in range");
        let sum = left.checked_add(right).expect("in range");
        prop_assert_eq!(sum.checked_sub(right).expect("in range"), left);
        prop_assert_eq!(sum.to_minor_units(), left.to_minor_units() + right.to_minor_units());
    }

    #[test]
    fn extra_precision_is_always_refused(
        currency in any_currency(),
        minor in 1i64..1_000_000,
        extra_digit in 1u32..=9,
    ) {
        let text = format!(
            "{}{}",
            Money::from_minor_units(minor, currency).expect("valid").amount(),
            if currency.minor_units() == 0 { format!(".{extra_digit}") } else { extra_digit.to_string() },
        );
        let refused = matches!(
            Money::parse(&text, currency),
            Err(MoneyError::TooManyDecimalPlaces { .. })
        );
        prop_assert!(refused, "{} {} was accepted", text, currency);
    }
}
