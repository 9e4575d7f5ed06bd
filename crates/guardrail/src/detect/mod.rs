//! Detectors: each finds spans of one or more [`EntityKind`]s in a text.

mod pii;

pub use pii::scan_pii;

/// What a finding is.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    /// An e-mail address.
    Email,
    /// A phone number (international or national format).
    Phone,
    /// A payment card number (Luhn-checked, known issuer prefix).
    CreditCard,
    /// An IBAN (mod-97 checked).
    Iban,
    /// A US social security number.
    UsSsn,
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
}

impl EntityKind {
    /// The default redaction mask, e.g. `[EMAIL]`.
    pub fn mask(self) -> &'static str {
        match self {
            Self::Email => "[EMAIL]",
            Self::Phone => "[PHONE]",
            Self::CreditCard => "[CREDIT_CARD]",
            Self::Iban => "[IBAN]",
            Self::UsSsn => "[SSN]",
            Self::Ipv4 | Self::Ipv6 => "[IP_ADDRESS]",
        }
    }

    /// A stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::CreditCard => "credit_card",
            Self::Iban => "iban",
            Self::UsSsn => "us_ssn",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
        }
    }
}

/// A span found in a text (byte offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// What it is.
    pub kind: EntityKind,
    /// Start (byte offset, inclusive).
    pub start: usize,
    /// End (byte offset, exclusive).
    pub end: usize,
}
