//! Bounded free text: reasons, codes, payment-method names. Never empty, never huge, never a
//! control character that could forge a log line.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The longest free text we record in an event.
pub const MAX_TEXT_LENGTH: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("the text must not be empty")]
    Empty,
    #[error("the text is longer than {max} characters")]
    TooLong { max: usize },
    #[error("the text must not contain control characters")]
    ControlCharacter,
}

/// Trimmed, non-empty text of at most [`MAX_TEXT_LENGTH`] characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ShortText(String);

impl ShortText {
    pub fn parse(text: impl AsRef<str>) -> Result<ShortText, TextError> {
        let trimmed = text.as_ref().trim();
        if trimmed.is_empty() {
            return Err(TextError::Empty);
        }
        if trimmed.chars().count() > MAX_TEXT_LENGTH {
            return Err(TextError::TooLong {
                max: MAX_TEXT_LENGTH,
            });
        }
        if trimmed.chars().any(char::is_control) {
            return Err(TextError::ControlCharacter);
        }
        Ok(ShortText(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShortText {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for ShortText {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, formatter)
    }
}

impl<'de> Deserialize<'de> for ShortText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ShortText::parse(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}
