//! The stable JSON shape of events.
//!
//! An event is stored as three things: its type name (the variant's name, e.g.
//! `PaymentCaptured`), its schema version, and a JSON object with its fields. Amounts are
//! `{"amount": "10.50", "currency": "USD"}` with the amount as a string; times are RFC 3339.
//! When a payload's shape changes, its schema version goes up and an upcaster turns the old
//! shape into the new one on read, so the log is never rewritten. `tests/golden/` pins every
//! current shape.

/// Why a stored event could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("unknown event type `{event_type}`")]
    UnknownEventType { event_type: String },
    #[error("{event_type} has schema version {schema_version}, which this build does not understand (current: {current})")]
    UnsupportedSchemaVersion {
        event_type: String,
        schema_version: u32,
        current: u32,
    },
    #[error("the payload of {event_type} v{schema_version} does not match its schema: {reason}")]
    InvalidPayload {
        event_type: String,
        schema_version: u32,
        reason: String,
    },
    #[error("a kept {stream_type} state does not encode or read back: {reason}")]
    KeptState {
        stream_type: &'static str,
        reason: String,
    },
}

/// Generates the codec of an event enum whose variants each wrap one payload struct.
/// `$upcast` turns an older payload of a type into the current one.
macro_rules! event_codec {
    ($enum:ident, $upcast:path, { $($variant:ident => $version:literal),* $(,)? }) => {
        impl $enum {
            /// Every event type of this enum with its current schema version.
            pub const EVENT_TYPES: &'static [(&'static str, u32)] =
                &[$((stringify!($variant), $version)),*];

            /// The stored type name: the variant's name.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $($enum::$variant(_) => stringify!($variant),)*
                }
            }

            /// The schema version this build writes for the event's type.
            pub fn schema_version(&self) -> u32 {
                match self {
                    $($enum::$variant(_) => $version,)*
                }
            }

            /// The event's fields as a JSON object.
            pub fn to_payload(&self) -> Result<serde_json::Value, $crate::codec::CodecError> {
                let encoded = match self {
                    $($enum::$variant(data) => serde_json::to_value(data),)*
                };
                encoded.map_err(|error| $crate::codec::CodecError::InvalidPayload {
                    event_type: self.event_type().to_owned(),
                    schema_version: self.schema_version(),
                    reason: error.to_string(),
                })
            }

            /// Reads a stored event back, upcasting older schema versions.
            pub fn from_stored(
                event_type: &str,
                schema_version: u32,
                payload: serde_json::Value,
            ) -> Result<Self, $crate::codec::CodecError> {
                let current = Self::EVENT_TYPES
                    .iter()
                    .find(|(name, _)| *name == event_type)
                    .map(|(_, version)| *version)
                    .ok_or_else(|| $crate::codec::CodecError::UnknownEventType {
                        event_type: event_type.chars().take(64).collect(),
                    })?;
                if schema_version > current || schema_version == 0 {
                    return Err($crate::codec::CodecError::UnsupportedSchemaVersion {
                        event_type: event_type.to_owned(),
                        schema_version,
                        current,
                    });
                }
                let payload = if schema_version < current {
                    $upcast(event_type, schema_version, payload)?
                } else {
                    payload
                };
                let invalid = |error: serde_json::Error| $crate::codec::CodecError::InvalidPayload {
                    event_type: event_type.to_owned(),
                    schema_version,
                    reason: error.to_string(),
                };
                match event_type {
                    $(stringify!($variant) => serde_json::from_value(payload)
                        .map($enum::$variant)
                        .map_err(invalid),)*
                    other => Err($crate::codec::CodecError::UnknownEventType {
                        event_type: other.to_owned(),
                    }),
                }
            }
        }
    };
}

pub(crate) use event_codec;
