//! Detectors: each finds spans of one or more [`EntityKind`]s in a text.

mod deny;
mod injection;
mod model;
mod pii;
mod secrets;

pub use deny::{DenyList, PatternError, RegexList, ascii_lowercase};
pub use injection::{DEFAULT_INJECTION_THRESHOLD, injection_score, injection_score_lowered};
pub use model::{HeadError, InjectionHead, InjectionMode, InjectionModel};
pub use pii::{
    DEFAULT_MIN_SCORE, DEFAULT_PHONE_REGIONS, DEFAULT_PII_KINDS, PiiDetector, PiiError, scan_pii,
};
pub use secrets::scan_secrets;

/// What a finding is.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
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
    /// An AWS access key id (`AKIA…`, `ASIA…`).
    AwsAccessKey,
    /// A GitHub token (`ghp_…`, `github_pat_…`).
    GithubToken,
    /// A Slack token (`xoxb-…`).
    SlackToken,
    /// An OpenAI API key (`sk-…`).
    OpenAiKey,
    /// An Anthropic API key (`sk-ant-…`).
    AnthropicKey,
    /// A PEM private-key block.
    PrivateKey,
    /// A JSON Web Token.
    Jwt,
    /// A UK National Insurance number (prefix rules, suffix A–D).
    UkNino,
    /// A German tax id (Steuer-ID: 11 digits, ISO 7064 MOD 11,10).
    DeTaxId,
    /// A French social security number (NIR / INSEE number, with its key).
    FrNir,
    /// A Spanish DNI or NIE (check letter).
    EsDni,
    /// An Italian codice fiscale (check letter).
    ItFiscalCode,
    /// An Indian Aadhaar number (Verhoeff).
    InAadhaar,
    /// An Indian PAN (structure).
    InPan,
    /// A Canadian social insurance number (Luhn).
    CaSin,
    /// A Brazilian CPF (two check digits).
    BrCpf,
    /// A passport number: only with a word naming a passport nearby.
    Passport,
    /// An EU (or UK, Swiss) VAT number (the national check digit where it has one).
    EuVat,
    /// A person's name, introduced as one (keyword rules; opt-in).
    Person,
    /// A street address with a house number (keyword rules; opt-in).
    StreetAddress,
}

impl EntityKind {
    /// Whether this is a secret (rather than personal data).
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            Self::AwsAccessKey
                | Self::GithubToken
                | Self::SlackToken
                | Self::OpenAiKey
                | Self::AnthropicKey
                | Self::PrivateKey
                | Self::Jwt
        )
    }

    /// The default redaction mask, e.g. `[EMAIL]`.
    pub fn mask(self) -> &'static str {
        match self {
            Self::Email => "[EMAIL]",
            Self::Phone => "[PHONE]",
            Self::CreditCard => "[CREDIT_CARD]",
            Self::Iban => "[IBAN]",
            Self::UsSsn => "[SSN]",
            Self::Ipv4 | Self::Ipv6 => "[IP_ADDRESS]",
            Self::PrivateKey => "[PRIVATE_KEY]",
            Self::Jwt => "[JWT]",
            Self::AwsAccessKey
            | Self::GithubToken
            | Self::SlackToken
            | Self::OpenAiKey
            | Self::AnthropicKey => "[SECRET]",
            Self::UkNino => "[UK_NINO]",
            Self::DeTaxId => "[DE_TAX_ID]",
            Self::FrNir => "[FR_NIR]",
            Self::EsDni => "[ES_DNI]",
            Self::ItFiscalCode => "[IT_FISCAL_CODE]",
            Self::InAadhaar => "[IN_AADHAAR]",
            Self::InPan => "[IN_PAN]",
            Self::CaSin => "[CA_SIN]",
            Self::BrCpf => "[BR_CPF]",
            Self::Passport => "[PASSPORT]",
            Self::EuVat => "[VAT_ID]",
            Self::Person => "[PERSON]",
            Self::StreetAddress => "[ADDRESS]",
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
            Self::AwsAccessKey => "aws_access_key",
            Self::GithubToken => "github_token",
            Self::SlackToken => "slack_token",
            Self::OpenAiKey => "openai_key",
            Self::AnthropicKey => "anthropic_key",
            Self::PrivateKey => "private_key",
            Self::Jwt => "jwt",
            Self::UkNino => "uk_nino",
            Self::DeTaxId => "de_tax_id",
            Self::FrNir => "fr_nir",
            Self::EsDni => "es_dni",
            Self::ItFiscalCode => "it_fiscal_code",
            Self::InAadhaar => "in_aadhaar",
            Self::InPan => "in_pan",
            Self::CaSin => "ca_sin",
            Self::BrCpf => "br_cpf",
            Self::Passport => "passport",
            Self::EuVat => "eu_vat",
            Self::Person => "person",
            Self::StreetAddress => "street_address",
        }
    }
}

/// A span found in a text (byte offsets).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding {
    /// What it is.
    pub kind: EntityKind,
    /// Start (byte offset, inclusive).
    pub start: usize,
    /// End (byte offset, exclusive).
    pub end: usize,
    /// Confidence in `0..=1`: the shape and check's base, raised or lowered by the words
    /// around it (PII); 1 for secrets.
    pub score: f32,
}
