//! RFC 8785 (JCS) canonical JSON, as the hash chain and idempotency hashes need it, fast for
//! the values the ledger stores.
//!
//! `serde_json_canonicalizer` is the reference, and it was most of the appending tasks' CPU:
//! it buffers and sorts every object's members as UTF-16 strings. What the ledger stores is
//! mostly objects with ASCII keys, strings and integers, whose canonical form needs none of
//! that: ASCII keys sort the same by bytes as by UTF-16 code units, integers up to 2^53 are
//! written as their digits, and strings escape exactly what `serde_json` escapes (`"`, `\`
//! and the control characters, in lowercase hex). Any value outside that (a float, a larger
//! integer, a non-ASCII key anywhere in it) is left whole to the library, which writes
//! numbers as ECMAScript does. A property test checks that both agree on arbitrary values.

use std::fmt::Write;

use serde_json::Value;

/// Largest integer written as plain digits here; JCS goes through IEEE doubles, exact up to it.
const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// The canonical text of a value.
pub fn to_string(value: &Value) -> serde_json::Result<String> {
    let mut text = String::with_capacity(256);
    if write_common(value, &mut text) {
        Ok(text)
    } else {
        serde_json_canonicalizer::to_string(value)
    }
}

/// The canonical text of a value, as bytes.
pub fn to_vec(value: &Value) -> serde_json::Result<Vec<u8>> {
    to_string(value).map(String::into_bytes)
}

/// Writes the value if it is made only of what this module handles itself; `false` (with
/// `text` then of no use) when the library must write it.
fn write_common(value: &Value, text: &mut String) -> bool {
    match value {
        Value::Null => text.push_str("null"),
        Value::Bool(true) => text.push_str("true"),
        Value::Bool(false) => text.push_str("false"),
        // Writing to a String cannot fail.
        Value::Number(number) => match (number.as_u64(), number.as_i64()) {
            (Some(unsigned), _) if unsigned <= MAX_EXACT_INTEGER => {
                let _ = write!(text, "{unsigned}");
            }
            (None, Some(signed)) if signed.unsigned_abs() <= MAX_EXACT_INTEGER => {
                let _ = write!(text, "{signed}");
            }
            _ => return false,
        },
        Value::String(string) => write_string(string, text),
        Value::Array(items) => {
            text.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    text.push(',');
                }
                if !write_common(item, text) {
                    return false;
                }
            }
            text.push(']');
        }
        Value::Object(members) => {
            let mut members: Vec<(&String, &Value)> = members.iter().collect();
            if !members.iter().all(|(key, _)| key.is_ascii()) {
                return false;
            }
            members.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            text.push('{');
            for (index, (key, member)) in members.into_iter().enumerate() {
                if index > 0 {
                    text.push(',');
                }
                write_string(key, text);
                text.push(':');
                if !write_common(member, text) {
                    return false;
                }
            }
            text.push('}');
        }
    }
    true
}

/// A JSON string: `"` and `\` escaped, control characters in their short form or as
/// `\u00xx`, everything else as it is.
fn write_string(string: &str, text: &mut String) {
    text.push('"');
    let mut unescaped_from = 0;
    for (index, byte) in string.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0C => "\\f",
            b'\r' => "\\r",
            0x00..=0x1F => "",
            _ => continue,
        };
        text.push_str(&string[unescaped_from..index]);
        if escape.is_empty() {
            let _ = write!(text, "\\u{byte:04x}");
        } else {
            text.push_str(escape);
        }
        unescaped_from = index + 1;
    }
    text.push_str(&string[unescaped_from..]);
    text.push('"');
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinity", |float| float.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[ -~\\x00-\\x1f\"\\\\]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z_0-9]{0,8}", inner.clone(), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
                prop::collection::btree_map(any::<String>(), inner, 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Whatever the value, the text is the reference implementation's.
        #[test]
        fn agrees_with_the_reference_implementation(value in any_json()) {
            prop_assert_eq!(
                super::to_string(&value).unwrap(),
                serde_json_canonicalizer::to_string(&value).unwrap()
            );
        }
    }

    /// The values the fast path is for: members sorted by key, integers as digits, strings
    /// escaped as JCS escapes them.
    #[test]
    fn writes_a_payment_payload_canonically() {
        let value = json!({
            "payment_id": "0b9c6f7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
            "amount": "1099.50",
            "attempt": 2,
            "refund": -3,
            "note": "line\u{1}\nquote\" back\\slash café ✓",
            "method": {"type": "card", "last4": "4242"},
            "tags": ["a", null, true],
        });
        assert_eq!(
            super::to_string(&value).unwrap(),
            r#"{"amount":"1099.50","attempt":2,"method":{"last4":"4242","type":"card"},"note":"line\u0001\nquote\" back\\slash café ✓","payment_id":"0b9c6f7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b","refund":-3,"tags":["a",null,true]}"#
        );
    }
}
