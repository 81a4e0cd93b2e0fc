//! The names under which the core's enums are stored as text: in the read models' tables and,
//! for the enums events carry, in the JSON of events (serde's names are the same).
//!
//! Each enum has one table, written once with [`stored_names!`]: it gives `ALL`, `as_str` and
//! `FromStr`, so the two directions cannot disagree. A stored name is a contract with the rows
//! already written: change a name only with a migration that rewrites them.

/// A stored name that no variant of the enum has: the row holding it is corrupt, or was
/// written by a build that knew a variant this one does not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a stored {kind}")]
pub struct UnknownName {
    /// What was expected, in words (`payment status`).
    pub kind: &'static str,
    pub name: String,
}

/// `stored_names!(Enum, "what it is" { Variant => "NAME", … })`: the one table of an enum's
/// stored names. `as_str` is a `match`, so a variant without a name does not compile.
macro_rules! stored_names {
    (@unit $variant:ident) => {
        ()
    };
    ($enum:ident, $kind:literal { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $enum {
            /// Every variant, in the order of its table of stored names.
            pub const ALL: [$enum; <[()]>::len(&[$(stored_names!(@unit $variant)),+])] =
                [$($enum::$variant),+];

            /// The stored name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($enum::$variant => $name),+
                }
            }
        }

        impl ::std::str::FromStr for $enum {
            type Err = $crate::stored::UnknownName;

            /// The variant of a stored name; exactly the names `as_str` gives.
            fn from_str(name: &str) -> Result<Self, Self::Err> {
                match name {
                    $($name => Ok($enum::$variant),)+
                    _ => Err($crate::stored::UnknownName {
                        kind: $kind,
                        name: name.to_owned(),
                    }),
                }
            }
        }
    };
}

pub(crate) use stored_names;
