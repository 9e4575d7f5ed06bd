//! Built-in PII detectors.
//!
//! One hand-written scanner looks only where a detector could match (`@` for e-mail, digits
//! for numbers and identifiers, `:` for IPv6), so ordinary prose is skipped at memory speed.
//! Every candidate is checked structurally — check digits (Luhn, mod-97, Verhoeff, MOD 11,10,
//! the national ones), phone numbers against real numbering plans (libphonenumber's metadata)
//! — and look-alikes (versions, dates, decimals, ISBNs, identifiers, prices) are refused.
//! Each finding has a score in `0..=1`, as Presidio gives one: a base for how specific its
//! shape and check are, raised by a word naming the entity nearby ("phone", "SSN",
//! "Aadhaar"), lowered by a word naming something else ("version", "order", "ISBN"). A
//! detector keeps findings scoring at least its minimum (default [`DEFAULT_MIN_SCORE`]).
//!
//! ```
//! use infergate_guardrail::detect::{EntityKind, PiiDetector};
//!
//! let pii = PiiDetector::new();
//! let found = pii.scan("Call 020 7946 0958 about build 5.15.0-1051-azure.");
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].kind, EntityKind::Phone);
//!
//! // German numbers only, and only the confident findings.
//! let de = PiiDetector::new().regions(["DE"])?.min_score(0.7)?;
//! assert!(de.scan("Ruf an: 030 901820").iter().any(|f| f.kind == EntityKind::Phone));
//! # Ok::<(), infergate_guardrail::detect::PiiError>(())
//! ```

mod checks;
mod context;
mod names;
mod phone;
mod scan;

use std::sync::LazyLock;

use super::{EntityKind, Finding};

/// A candidate kind with its score before context.
type Scored = (EntityKind, f32);

/// The minimum score a finding needs by default.
pub const DEFAULT_MIN_SCORE: f32 = 0.5;

/// The phone regions validated by default (national numbers as written there; `+`
/// international numbers of every country are always validated).
pub const DEFAULT_PHONE_REGIONS: [&str; 10] =
    ["US", "GB", "DE", "FR", "ES", "IT", "IN", "BR", "CA", "AU"];

/// The kinds a PII detector finds by default: every personal-data kind but the opt-in
/// [`EntityKind::Person`] and [`EntityKind::StreetAddress`] (keyword rules, see
/// [`PiiDetector`]).
pub const DEFAULT_PII_KINDS: [EntityKind; 18] = [
    EntityKind::Email,
    EntityKind::Phone,
    EntityKind::CreditCard,
    EntityKind::Iban,
    EntityKind::UsSsn,
    EntityKind::Ipv4,
    EntityKind::Ipv6,
    EntityKind::UkNino,
    EntityKind::DeTaxId,
    EntityKind::FrNir,
    EntityKind::EsDni,
    EntityKind::ItFiscalCode,
    EntityKind::InAadhaar,
    EntityKind::InPan,
    EntityKind::CaSin,
    EntityKind::BrCpf,
    EntityKind::Passport,
    EntityKind::EuVat,
];

/// A PII detector's settings that are wrong.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PiiError {
    /// A phone region that is not an ISO 3166 alpha-2 code libphonenumber knows.
    #[error(
        "unknown phone region {0:?} (use ISO 3166 alpha-2 codes such as \"US\", \"GB\", \"DE\")"
    )]
    UnknownRegion(String),
    /// A minimum score outside `0..=1`.
    #[error("the minimum score must be within 0 and 1, got {0}")]
    MinScore(f32),
}

/// The built-in PII detectors with their settings: which kinds, which phone regions, the
/// minimum score.
///
/// Names and street addresses ([`EntityKind::Person`], [`EntityKind::StreetAddress`]) are
/// found by keyword rules, not a model: a name introduced as one ("my name is …", "Mr …",
/// "Dear …", "Name: …"), an address with a house number and a street word ("221B Baker
/// Street", "Hauptstraße 5", "12 rue de la Paix"). They are off unless listed.
#[derive(Debug, Clone)]
pub struct PiiDetector {
    kinds: u64,
    listed: Vec<EntityKind>,
    regions: phone::Regions,
    min_score: f32,
}

static DEFAULT: LazyLock<PiiDetector> = LazyLock::new(PiiDetector::new);

impl Default for PiiDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl PiiDetector {
    /// Every default kind ([`DEFAULT_PII_KINDS`]), phones of [`DEFAULT_PHONE_REGIONS`], minimum
    /// score [`DEFAULT_MIN_SCORE`].
    pub fn new() -> Self {
        let regions = phone::Regions::lenient(DEFAULT_PHONE_REGIONS);
        let mut d = Self {
            kinds: 0,
            listed: Vec::new(),
            regions,
            min_score: DEFAULT_MIN_SCORE,
        };
        d.kinds = DEFAULT_PII_KINDS
            .iter()
            .fold(0, |m, &k| m | context::bit(k));
        d
    }

    /// Only these kinds (an empty list keeps the default kinds). Secret kinds are ignored:
    /// they belong to the secrets detector.
    #[must_use]
    pub fn entities(mut self, kinds: impl IntoIterator<Item = EntityKind>) -> Self {
        let listed: Vec<EntityKind> = kinds.into_iter().filter(|k| !k.is_secret()).collect();
        if !listed.is_empty() {
            self.kinds = listed.iter().fold(0, |m, &k| m | context::bit(k));
            self.listed = listed;
        }
        self
    }

    /// The regions whose national phone numbers are validated (ISO 3166 alpha-2, `UK` read as
    /// `GB`); `+` international numbers are validated whatever the list.
    ///
    /// # Errors
    /// [`PiiError::UnknownRegion`] for a code libphonenumber does not know.
    pub fn regions<S: AsRef<str>>(
        mut self,
        codes: impl IntoIterator<Item = S>,
    ) -> Result<Self, PiiError> {
        self.regions = phone::Regions::new(codes).map_err(|e| PiiError::UnknownRegion(e.0))?;
        Ok(self)
    }

    /// Keep findings scoring at least `min` (`0..=1`).
    ///
    /// # Errors
    /// [`PiiError::MinScore`] outside `0..=1`.
    pub fn min_score(mut self, min: f32) -> Result<Self, PiiError> {
        if !(0.0..=1.0).contains(&min) {
            return Err(PiiError::MinScore(min));
        }
        self.min_score = min;
        Ok(self)
    }

    /// Whether this detector looks for `kind`.
    pub fn wants(&self, kind: EntityKind) -> bool {
        !kind.is_secret() && self.kinds & context::bit(kind) != 0
    }

    /// The kinds listed with [`entities`](Self::entities) (empty: the defaults).
    pub fn listed(&self) -> &[EntityKind] {
        &self.listed
    }

    /// The phone regions, in order.
    pub fn region_codes(&self) -> Vec<&str> {
        self.regions.codes()
    }

    /// Streaming: the position in `window` (the newest text of a stream) from which text must
    /// be held back because more text could still change a finding (on top of the trailing
    /// word, which every entity detector holds): a number ending within
    /// the last bytes (a word after it — "mobile", "ms" — changes its score), with the digits,
    /// separators and letters before it; with names or addresses on, the last six words.
    pub(crate) fn stream_hold(&self, window: &str) -> usize {
        let b = window.as_bytes();
        let mut hold = b.len();
        let from = b.len().saturating_sub(context::AFTER + 1);
        if let Some(last) = b[from..]
            .iter()
            .rposition(u8::is_ascii_digit)
            .map(|i| from + i)
        {
            let mut s = last;
            let floor = last.saturating_sub(40);
            // Digits and separators, and letters attached to them ("AB123456C").
            while s > floor
                && (b[s - 1].is_ascii_digit()
                    || b" ()+-./".contains(&b[s - 1])
                    || (b[s - 1].is_ascii_alphabetic() && b[s].is_ascii_alphanumeric()))
            {
                s -= 1;
            }
            hold = s;
        }
        if self.wants(EntityKind::Person) || self.wants(EntityKind::StreetAddress) {
            let floor = b.len().saturating_sub(96);
            let mut s = b.len();
            let mut words = 0;
            while s > floor && words < 6 {
                while s > floor && b[s - 1].is_ascii_whitespace() {
                    s -= 1;
                }
                while s > floor && !b[s - 1].is_ascii_whitespace() {
                    s -= 1;
                }
                words += 1;
            }
            while s < b.len() && !window.is_char_boundary(s) {
                s += 1;
            }
            hold = hold.min(s);
        }
        hold
    }

    /// The findings in `text`, in order, without overlaps, each scoring at least the minimum.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        scan::scan(self, text)
    }
}

/// Finds the default kinds ([`DEFAULT_PII_KINDS`]) in `text` with the default settings, in
/// order, without overlaps.
pub fn scan_pii(text: &str) -> Vec<Finding> {
    DEFAULT.scan(text)
}

impl Finding {
    pub(crate) fn scored(kind: EntityKind, start: usize, end: usize, score: f32) -> Self {
        Self {
            kind,
            start,
            end,
            score,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(t: &str) -> Vec<(EntityKind, &str)> {
        scan_pii(t)
            .into_iter()
            .map(|f| (f.kind, &t[f.start..f.end]))
            .collect()
    }

    #[test]
    fn finds_each_kind() {
        let cases = [
            (
                "write to UtaKortig@jourrapide.com.",
                EntityKind::Email,
                "UtaKortig@jourrapide.com",
            ),
            (
                "card 4111-1111-1111-1111 ok",
                EntityKind::CreditCard,
                "4111-1111-1111-1111",
            ),
            (
                "IBAN GB56HXDO88167774656119.",
                EntityKind::Iban,
                "GB56HXDO88167774656119",
            ),
            (
                "IBAN DE89 3704 0044 0532 0130 00 now",
                EntityKind::Iban,
                "DE89 3704 0044 0532 0130 00",
            ),
            ("ssn 460-89-9847", EntityKind::UsSsn, "460-89-9847"),
            ("from 106.31.73.20 today", EntityKind::Ipv4, "106.31.73.20"),
            (
                "host 2a00:1450:4001:81b::200e up",
                EntityKind::Ipv6,
                "2a00:1450:4001:81b::200e",
            ),
            ("Phone: 451 5986", EntityKind::Phone, "451 5986"),
            (
                "NI number AB 12 34 56 C.",
                EntityKind::UkNino,
                "AB 12 34 56 C",
            ),
            (
                "Steuer-ID: 86 095 742 719",
                EntityKind::DeTaxId,
                "86 095 742 719",
            ),
            (
                "NIR 2 55 08 14 168 025 38",
                EntityKind::FrNir,
                "2 55 08 14 168 025 38",
            ),
            ("DNI 12345678Z.", EntityKind::EsDni, "12345678Z"),
            ("NIE X1234567L", EntityKind::EsDni, "X1234567L"),
            (
                "CF RSSMRA85T10A562S",
                EntityKind::ItFiscalCode,
                "RSSMRA85T10A562S",
            ),
            (
                "Aadhaar 4991 1866 5246",
                EntityKind::InAadhaar,
                "4991 1866 5246",
            ),
            ("PAN ABCPE1234F", EntityKind::InPan, "ABCPE1234F"),
            ("SIN: 130 692 544", EntityKind::CaSin, "130 692 544"),
            ("CPF 529.982.247-25", EntityKind::BrCpf, "529.982.247-25"),
            ("passport no. C01X00T47", EntityKind::Passport, "C01X00T47"),
            ("USt-IdNr. DE136695976", EntityKind::EuVat, "DE136695976"),
        ];
        for (text, kind, value) in cases {
            assert_eq!(kinds(text), [(kind, value)], "{text}");
        }
        for p in [
            "(898)666-3621x0135",
            "+447700 208 815",
            "07700 063 966",
            "03.93.92.16.85",
            "001-518-640-0854",
            "5403926876",
            "(37) 788-063",
            "020 7946 0958",
            "030/123456",
            "(11) 96123-4567",
            "98491 22834",
        ] {
            assert_eq!(
                kinds(&format!("call {p} now")),
                [(EntityKind::Phone, p)],
                "{p}"
            );
        }
    }

    #[test]
    fn the_issues_look_alikes_are_not_pii() {
        for t in [
            "Download build 5.15.0-1051-azure.",
            "ISBN 978-3-16-148410-0 is the first edition.",
            "Release 2024-03-15 shipped build 20240315.1842.",
            "The ratio was 3.14159265358979 after 1000000 runs.",
            "SSN-like test value 000-12-3456 is invalid by design.",
            "In 2023 we sold 1,500 units at 19.99 each.",
            "Meet on 2024-03-15 at 10:30, room 4.",
            "Version 3.2.1 of the API, 12 items, order 12345.",
            "The meeting is on 15/03/2024.",
            "Invalid card 4111 1111 1111 1112 here",
            "word123456789 and ABC-1234",
            "my new address is 224 4966 Bond Street",
            "When: 2000-04-16 11:34:35",
            "Invalid NINO QQ 12 34 56 C, invalid DNI 12345678A.",
            "netmask 255.255.252.0, docs 192.0.2.10 and 2001:db8::1, any 0.0.0.0",
            "pool 10.20.0.100 to 10.20.0.250 behind 192.168.1.1",
            "Ihre Bestellung Nr. 856.495.523 vom 07.08.2019",
            "Protocollo n. 0045123/2024.",
            "CAS 7732-18-5 (water), CPF de teste 000.000.000-00",
            "assert format_phone(\"1234567890\") == \"123-456-7890\"; (000) 000-0000",
            "Votre commande du 10 novembre 2023 (4 622,46 €)",
        ] {
            assert_eq!(kinds(t), [], "{t}");
        }
    }

    #[test]
    fn context_words_raise_and_lower_scores() {
        let score = |t: &str| {
            PiiDetector::new()
                .min_score(0.0)
                .unwrap()
                .scan(t)
                .first()
                .map(|f| (f.kind, f.score))
        };
        let bare = score("see 415 555 0132").unwrap();
        let named = score("mobile 415 555 0132").unwrap();
        let other = score("order 415 555 0132").unwrap();
        assert_eq!(bare.0, EntityKind::Phone);
        assert!(
            named.1 > bare.1 && other.1 < bare.1,
            "{bare:?} {named:?} {other:?}"
        );
        assert!(other.1 < DEFAULT_MIN_SCORE);
        // A short local number needs a phone word; a plain digit run, too.
        assert_eq!(kinds("room 451 5986"), []);
        assert_eq!(kinds("id 4155550132"), []);
        assert_eq!(kinds("tel 4155550132").len(), 1);
        // A private address names no one, unless a word says it is someone's.
        assert_eq!(kinds("via 10.0.3.17"), []);
        assert_eq!(kinds("my ip: 192.168.0.1").len(), 1);
        // Grouped as no numbering plan writes it: an order number unless a word says phone.
        assert_eq!(kinds("ref 7784-2231-09 ok"), []);
        assert_eq!(
            kinds("see (201) 555-0123"),
            [(EntityKind::Phone, "(201) 555-0123")]
        );
    }

    #[test]
    fn regions_and_minimum_score_are_configurable() {
        let us = PiiDetector::new().regions(["us"]).unwrap();
        assert_eq!(us.region_codes(), ["US"]);
        assert!(us.scan("see 020 7946 0958").is_empty());
        assert_eq!(PiiDetector::new().scan("see 020 7946 0958").len(), 1);
        assert_eq!(us.scan("see +44 20 7946 0958").len(), 1);
        assert_eq!(
            PiiDetector::new().regions(["XX"]).unwrap_err(),
            PiiError::UnknownRegion("XX".into())
        );
        assert!(PiiDetector::new().min_score(1.5).is_err());
        let strict = PiiDetector::new().min_score(0.9).unwrap();
        assert!(strict.scan("see 020 7946 0958").is_empty());
        assert_eq!(strict.scan("call 020 7946 0958").len(), 1);
        assert_eq!(strict.scan("mail a@b.co").len(), 1);
        let only = PiiDetector::new().entities([EntityKind::Email]);
        assert!(only.scan("call 020 7946 0958").is_empty());
    }

    #[test]
    fn names_and_addresses_are_opt_in_keyword_rules() {
        let t = "Hi, my name is Jane Doe and I live at 221B Baker Street, or Hauptstraße 5.";
        assert!(scan_pii(t).is_empty());
        let d = PiiDetector::new().entities([EntityKind::Person, EntityKind::StreetAddress]);
        let found: Vec<(EntityKind, &str)> = d
            .scan(t)
            .into_iter()
            .map(|f| (f.kind, &t[f.start..f.end]))
            .collect();
        assert_eq!(
            found,
            [
                (EntityKind::Person, "Jane Doe"),
                (EntityKind::StreetAddress, "221B Baker Street"),
                (EntityKind::StreetAddress, "Hauptstraße 5"),
            ]
        );
    }
}

#[cfg(test)]
mod idempotence {
    use super::*;

    /// Redacting a redacted text changes nothing, whatever the words around the numbers.
    #[test]
    fn redaction_is_idempotent_on_random_texts() {
        let words = [
            "call",
            "phone",
            "order",
            "version",
            "my name is",
            "John",
            "Smith",
            "221B",
            "Baker",
            "Street",
            "Hauptstraße",
            "5",
            "020 7946 0958",
            "+44 7700 900123",
            "555 1234",
            "12345678Z",
            "AB 12 34 56 C",
            "4991 1866 5246",
            "529.982.247-25",
            "DE136695976",
            "passport",
            "C01X00T47",
            "SSN",
            "460-89-9847",
            "ms",
            "-Office",
            "(",
            ")",
            "10.0.0.1",
            "192.168.1.1",
            "ip",
            "2024-03-15",
            "5.15.0-1051",
            "#",
            "é",
            "漢字",
            "\n",
        ];
        let every = PiiDetector::new().entities(
            DEFAULT_PII_KINDS
                .into_iter()
                .chain([EntityKind::Person, EntityKind::StreetAddress]),
        );
        let redact = |t: &str| {
            let mut out = String::new();
            let mut pos = 0;
            for f in every.scan(t) {
                assert!(t.is_char_boundary(f.start) && t.is_char_boundary(f.end));
                out.push_str(&t[pos..f.start]);
                out.push_str(f.kind.mask());
                pos = f.end;
            }
            out.push_str(&t[pos..]);
            out
        };
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..3000 {
            let mut t = String::new();
            for _ in 0..12 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                t.push_str(words[usize::try_from(seed % words.len() as u64).unwrap_or(0)]);
                t.push(if seed.is_multiple_of(5) { ',' } else { ' ' });
            }
            let once = redact(&t);
            assert_eq!(redact(&once), once, "{t:?}");
        }
    }
}
