//! The scalars of interfaces.md that async-graphql does not provide: `Decimal` (a string with
//! the exact scale of its currency, never a float) and `Position` (64-bit, carried as a string
//! of digits so no client loses precision; a number is accepted on input).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// An amount as the client typed it. It becomes money only together with its currency, which
/// decides how many decimal places are allowed, so it stays text until then.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct DecimalText(pub String);

#[Scalar(name = "Decimal")]
impl ScalarType for DecimalText {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(text) if text.len() <= 40 => Ok(DecimalText(text)),
            Value::String(_) => Err(InputValueError::custom("the amount is too long")),
            Value::Number(_) => Err(InputValueError::custom(
                "amounts are strings, e.g. \"10.50\": a JSON number could lose precision",
            )),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// A global log position or stream version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Position(pub u64);

#[Scalar(name = "Position")]
impl ScalarType for Position {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => text
                .parse::<u64>()
                .map(Position)
                .map_err(|_| InputValueError::custom("a position is a string of digits")),
            Value::Number(number) => number
                .as_u64()
                .map(Position)
                .ok_or_else(|| InputValueError::custom("a position is a non-negative integer")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}
