//! Request parameters as Stripe encodes them: form-encoded, nested with brackets
//! (`metadata[order_id]=…`, `payment_method_data[card][number]=…`, `expand[0]=…`).
//!
//! A handler takes the parameters it knows one by one; [`Params::finish`] then refuses
//! whatever is left, as Stripe refuses unknown parameters (`Received unknown parameter`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::api_error::ApiError;

/// Stripe nests at most a few levels; deeper keys are refused by the parser.
const MAX_DEPTH: usize = 5;

/// Stripe's metadata limits: 50 keys, keys up to 40 characters, values up to 500.
const MAX_METADATA_KEYS: usize = 50;
const MAX_METADATA_KEY_CHARS: usize = 40;
const MAX_METADATA_VALUE_CHARS: usize = 500;

/// Lists (payment method types) are short.
const MAX_LIST_ITEMS: usize = 20;

/// Free text (descriptions, evidence) is bounded too.
pub const MAX_TEXT_CHARS: usize = 20_000;

/// The latest timestamp a filter may name (the year 9999).
const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// The largest amount Stripe accepts: eight digits of minor units.
pub const MAX_AMOUNT: i64 = 99_999_999;

#[derive(Debug, Default)]
pub struct Params {
    values: Map<String, Value>,
}

impl Params {
    /// Parses a form body or a query string; keys with percent-encoded brackets (as Stripe's
    /// libraries send them) nest like plain ones.
    pub fn parse(encoded: &[u8]) -> Result<Params, ApiError> {
        if encoded.iter().all(u8::is_ascii_whitespace) {
            return Ok(Params::default());
        }
        let values: Map<String, Value> = serde_qs::Config::new(MAX_DEPTH, false)
            .deserialize_bytes(encoded)
            .map_err(|error| {
                ApiError::invalid_request(
                    "parameter_invalid",
                    format!("Invalid request body: {error}"),
                )
            })?;
        Ok(Params { values })
    }

    /// The parameters as a canonical string, for comparing idempotent requests.
    pub fn fingerprint(&self) -> String {
        Value::Object(self.values.clone()).to_string()
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.values.remove(name)
    }

    pub fn text(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(text)) if text.chars().count() <= MAX_TEXT_CHARS => Ok(Some(text)),
            Some(Value::String(_)) => Err(ApiError::invalid_param(
                name,
                format!("{name} is longer than {MAX_TEXT_CHARS} characters."),
            )),
            Some(_) => Err(ApiError::invalid_param(
                name,
                format!("Invalid string: {name} must be a string."),
            )),
        }
    }

    pub fn required_text(&mut self, name: &str) -> Result<String, ApiError> {
        self.text(name)?
            .filter(|text| !text.is_empty())
            .ok_or_else(|| ApiError::missing_param(name))
    }

    /// One of `allowed`.
    pub fn choice(&mut self, name: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        match self.text(name)? {
            Some(value) if allowed.contains(&value.as_str()) => Ok(Some(value)),
            Some(value) => Err(ApiError::invalid_param(
                name,
                format!(
                    "Invalid {name}: must be one of {}; got `{value}`.",
                    allowed.join(", ")
                ),
            )),
            None => Ok(None),
        }
    }

    pub fn boolean(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.text(name)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::invalid_param(
                name,
                format!("Invalid boolean: {name} must be true or false."),
            )),
        }
    }

    /// An amount in minor units: a positive integer within Stripe's maximum.
    pub fn amount(&mut self, name: &str) -> Result<Option<i64>, ApiError> {
        let Some(text) = self.text(name)? else {
            return Ok(None);
        };
        match text.parse::<i64>() {
            Ok(amount) if (1..=MAX_AMOUNT).contains(&amount) => Ok(Some(amount)),
            Ok(_) => Err(ApiError::invalid_param(
                name,
                format!("Invalid {name}: must be between 1 and {MAX_AMOUNT}."),
            )
            .with_code("amount_too_large")),
            Err(_) => Err(ApiError::invalid_param(
                name,
                format!("Invalid integer: {text}"),
            )),
        }
    }

    /// A small non-negative integer (list limits).
    pub fn integer(
        &mut self,
        name: &str,
        range: std::ops::RangeInclusive<usize>,
    ) -> Result<Option<usize>, ApiError> {
        let Some(text) = self.text(name)? else {
            return Ok(None);
        };
        match text.parse::<usize>() {
            Ok(value) if range.contains(&value) => Ok(Some(value)),
            _ => Err(ApiError::invalid_param(
                name,
                format!(
                    "Invalid {name}: must be an integer between {} and {}.",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    /// `metadata[key]=value` pairs, within Stripe's limits; an empty value unsets a key, as
    /// in Stripe, which the caller applies.
    pub fn metadata(&mut self, name: &str) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        let Some(value) = self.take(name) else {
            return Ok(None);
        };
        let Value::Object(entries) = value else {
            // `metadata=` (empty) clears all metadata in Stripe.
            return match value {
                Value::String(text) if text.is_empty() => Ok(Some(BTreeMap::new())),
                _ => Err(ApiError::invalid_param(name, "Invalid object")),
            };
        };
        if entries.len() > MAX_METADATA_KEYS {
            return Err(ApiError::invalid_param(
                name,
                format!("Invalid metadata: metadata can have up to {MAX_METADATA_KEYS} keys."),
            ));
        }
        let mut metadata = BTreeMap::new();
        for (key, value) in entries {
            let param = format!("{name}[{key}]");
            let Value::String(value) = value else {
                return Err(ApiError::invalid_param(&param, "Invalid string"));
            };
            if key.chars().count() > MAX_METADATA_KEY_CHARS {
                return Err(ApiError::invalid_param(
                    &param,
                    format!("Metadata keys can have up to {MAX_METADATA_KEY_CHARS} characters."),
                ));
            }
            if value.chars().count() > MAX_METADATA_VALUE_CHARS {
                return Err(ApiError::invalid_param(
                    &param,
                    format!(
                        "Metadata values can have up to {MAX_METADATA_VALUE_CHARS} characters."
                    ),
                ));
            }
            metadata.insert(key, value);
        }
        Ok(Some(metadata))
    }

    /// A nested object (`payment_method_data[…]`, `evidence[…]`) as parameters of its own,
    /// whose names are reported with the parent's prefix.
    pub fn nested(&mut self, name: &str) -> Result<Option<Nested>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Object(values)) => Ok(Some(Nested {
                prefix: name.to_owned(),
                params: Params { values },
            })),
            Some(_) => Err(ApiError::invalid_param(name, "Invalid object")),
        }
    }

    /// A timestamp filter as Stripe's lists take it: `created=T`, or any of
    /// `created[gt|gte|lt|lte]=T`; answered as the inclusive bounds it leaves.
    pub fn timestamp_range(&mut self, name: &str) -> Result<(i64, i64), ApiError> {
        let timestamp = |text: &str, param: &str| {
            text.parse::<i64>()
                .ok()
                .filter(|value| (0..=MAX_TIMESTAMP).contains(value))
                .ok_or_else(|| ApiError::invalid_param(param, format!("Invalid timestamp: {text}")))
        };
        let mut range = (0, MAX_TIMESTAMP);
        match self.take(name) {
            None => {}
            Some(Value::String(text)) => {
                let at = timestamp(&text, name)?;
                range = (at, at);
            }
            Some(Value::Object(bounds)) => {
                for (bound, value) in bounds {
                    let param = format!("{name}[{bound}]");
                    let Value::String(text) = value else {
                        return Err(ApiError::invalid_param(&param, "Invalid timestamp"));
                    };
                    let at = timestamp(&text, &param)?;
                    match bound.as_str() {
                        "gt" => range.0 = range.0.max(at.saturating_add(1)),
                        "gte" => range.0 = range.0.max(at),
                        "lt" => range.1 = range.1.min(at.saturating_sub(1)),
                        "lte" => range.1 = range.1.min(at),
                        _ => return Err(ApiError::unknown_param(&param)),
                    }
                }
            }
            Some(_) => return Err(ApiError::invalid_param(name, "Invalid timestamp")),
        }
        Ok(range)
    }

    /// Parameters every Stripe endpoint accepts that operations do not read (`expand` is
    /// taken by the caller first, see [`Params::take_expand`]).
    pub fn ignore_common(&mut self) {
        for name in ["expand", "stripe_account"] {
            self.values.remove(name);
        }
    }

    /// `expand[]=latest_charge`: the fields to render as objects instead of ids.
    pub fn take_expand(&mut self) -> Result<Vec<String>, ApiError> {
        Ok(self.list("expand")?.unwrap_or_default())
    }

    /// Parameters the endpoint accepts and ignores.
    pub fn ignore(&mut self, names: &[&str]) {
        for name in names {
            self.values.remove(*name);
        }
    }

    /// A list of strings: `name[0]=a&name[1]=b` or `name[]=a`.
    pub fn list(&mut self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        let items = match self.take(name) {
            None => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(Value::Object(items)) => items.into_iter().map(|(_, item)| item).collect(),
            Some(Value::String(item)) => vec![Value::String(item)],
            Some(_) => return Err(ApiError::invalid_param(name, "Invalid array")),
        };
        if items.len() > MAX_LIST_ITEMS {
            return Err(ApiError::invalid_param(name, "Too many items."));
        }
        items
            .into_iter()
            .map(|item| match item {
                Value::String(text) if text.len() <= MAX_METADATA_KEY_CHARS => Ok(text),
                _ => Err(ApiError::invalid_param(name, "Invalid array item")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Refuses the first parameter nobody took.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.values.keys().next() {
            Some(name) => Err(ApiError::unknown_param(name)),
            None => Ok(()),
        }
    }
}

/// A nested object's parameters.
#[derive(Debug)]
pub struct Nested {
    prefix: String,
    pub params: Params,
}

impl Nested {
    /// The full name of a nested parameter, `parent[child]`.
    pub fn name(&self, child: &str) -> String {
        format!("{}[{child}]", self.prefix)
    }

    pub fn text(&mut self, child: &str) -> Result<Option<String>, ApiError> {
        let name = self.name(child);
        self.params
            .text(child)
            .map_err(|error| rename(error, &name))
    }

    pub fn nested(&mut self, child: &str) -> Result<Option<Nested>, ApiError> {
        let name = self.name(child);
        Ok(self
            .params
            .nested(child)
            .map_err(|error| rename(error, &name))?
            .map(|mut nested| {
                nested.prefix = name;
                nested
            }))
    }

    pub fn finish(self) -> Result<(), ApiError> {
        match self.params.values.keys().next() {
            Some(child) => Err(ApiError::unknown_param(&format!(
                "{}[{child}]",
                self.prefix
            ))),
            None => Ok(()),
        }
    }
}

fn rename(mut error: ApiError, name: &str) -> ApiError {
    error.param = Some(name.to_owned());
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_nest_whether_encoded_or_not() {
        let mut params = Params::parse(
            b"amount=1000&metadata%5Border_id%5D=o-1&payment_method_data[card][number]=4242",
        )
        .unwrap();
        assert_eq!(params.amount("amount").unwrap(), Some(1000));
        let metadata = params.metadata("metadata").unwrap().unwrap();
        assert_eq!(metadata["order_id"], "o-1");
        let mut data = params.nested("payment_method_data").unwrap().unwrap();
        let mut card = data.nested("card").unwrap().unwrap();
        assert_eq!(card.text("number").unwrap().as_deref(), Some("4242"));
        card.finish().unwrap();
        data.finish().unwrap();
        params.finish().unwrap();
    }

    #[test]
    fn unknown_and_bad_parameters_are_named() {
        let mut params = Params::parse(b"amount=abc&colour=red").unwrap();
        assert_eq!(
            params.amount("amount").unwrap_err().param.as_deref(),
            Some("amount")
        );
        assert_eq!(
            params.finish().unwrap_err().param.as_deref(),
            Some("colour")
        );
    }
}
