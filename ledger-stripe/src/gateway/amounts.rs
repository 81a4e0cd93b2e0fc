//! Stripe's amounts: integers in the currency's smallest unit *as Stripe counts it*. That is
//! ISO 4217's minor unit (the ledger's scale, `Currency::minor_units`) for every currency but
//! Stripe's documented special cases, where reading the integer at ISO's scale would be wrong
//! by a factor of a hundred.
//!
//! - ISK: zero-decimal in ISO 4217, but for backwards compatibility Stripe's API keeps it
//!   two-decimal: `500` is 5 króna, and since April 2023 an amount must be a multiple of 100.
//! - HUF and TWD: two-decimal in the API as in ISO (payouts must be whole units, which does
//!   not change how an amount reads).
//! - UGX: zero-decimal in Stripe's API as in ISO.
//! - BHD, JOD, KWD, OMR, TND: three-decimal as in ISO (the last digit must be 0 for cards).
//!
//! An amount that is not a whole number of the ledger's units (ISK `550`) is refused, never
//! rounded: a fraction the ledger cannot hold is a mismatch to look at, not money to drop.

use ledger_core::{Currency, Money, MoneyError};
use rust_decimal::Decimal;

/// Currencies whose Stripe amounts carry more decimals than ISO 4217 gives them, with the
/// number of decimals Stripe uses.
const STRIPE_DECIMALS: [(&str, u32); 1] = [("ISK", 2)];

/// How many decimals Stripe's integer amounts carry in `currency`.
pub fn stripe_decimals(currency: Currency) -> u32 {
    STRIPE_DECIMALS
        .iter()
        .find(|(code, _)| *code == currency.code())
        .map_or(currency.minor_units(), |(_, decimals)| *decimals)
}

/// Why a Stripe amount is not money the ledger can hold.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StripeAmountError {
    #[error("{amount} is not a whole amount of {currency}: Stripe counts it in hundredths, and only whole units exist")]
    Fractional { amount: i64, currency: Currency },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A Stripe amount (`amount`, `amount_refunded`, a payout's `amount`, …) as ledger money.
pub fn money_from_stripe(amount: i64, currency: Currency) -> Result<Money, StripeAmountError> {
    let decimals = stripe_decimals(currency);
    let exact = Decimal::new(amount, decimals).normalize();
    if exact.scale() > currency.minor_units() {
        return Err(StripeAmountError::Fractional { amount, currency });
    }
    Ok(Money::new(exact, currency)?)
}

/// Ledger money as the integer Stripe's API takes and sends in `currency`.
pub fn money_to_stripe(money: Money) -> i64 {
    let currency = money.currency();
    let extra = stripe_decimals(currency).saturating_sub(currency.minor_units());
    // Money's range bound keeps a hundredfold of any amount within i64.
    money.to_minor_units() * 10_i64.pow(extra)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn currency(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn read(amount: i64, code: &str) -> String {
        money_from_stripe(amount, currency(code))
            .unwrap()
            .to_string()
    }

    #[test]
    fn isk_amounts_are_hundredths_of_a_krona() {
        assert_eq!(
            read(500, "ISK"),
            Money::parse("5", currency("ISK")).unwrap().to_string()
        );
        assert_eq!(
            read(123_400, "ISK"),
            Money::parse("1234", currency("ISK")).unwrap().to_string()
        );
        assert!(matches!(
            money_from_stripe(550, currency("ISK")),
            Err(StripeAmountError::Fractional { amount: 550, .. })
        ));
        let five = Money::parse("5", currency("ISK")).unwrap();
        assert_eq!(money_to_stripe(five), 500);
    }

    #[test]
    fn huf_and_twd_read_as_two_decimal_currencies() {
        for code in ["HUF", "TWD"] {
            let money = money_from_stripe(1050, currency(code)).unwrap();
            assert_eq!(
                money,
                Money::parse("10.50", currency(code)).unwrap(),
                "{code}"
            );
            assert_eq!(money_to_stripe(money), 1050);
        }
    }

    #[test]
    fn ugx_and_jpy_read_as_zero_decimal_currencies() {
        for code in ["UGX", "JPY"] {
            let money = money_from_stripe(5000, currency(code)).unwrap();
            assert_eq!(
                money,
                Money::parse("5000", currency(code)).unwrap(),
                "{code}"
            );
            assert_eq!(money_to_stripe(money), 5000);
        }
    }

    #[test]
    fn three_decimal_currencies_read_in_thousandths() {
        for code in ["BHD", "JOD", "KWD", "OMR", "TND"] {
            let money = money_from_stripe(5120, currency(code)).unwrap();
            assert_eq!(
                money,
                Money::parse("5.120", currency(code)).unwrap(),
                "{code}"
            );
            assert_eq!(money_to_stripe(money), 5120);
        }
    }

    #[test]
    fn usd_is_unchanged() {
        assert_eq!(
            money_from_stripe(1099, currency("USD")).unwrap(),
            Money::parse("10.99", currency("USD")).unwrap()
        );
    }
}
