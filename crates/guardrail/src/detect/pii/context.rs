//! Context words around a candidate, as Presidio uses them: a word that names the entity
//! raises its score, a word that names something else (a version, an order, a price) lowers
//! it. Only the words between the candidate and the previous number (or mask) count, so a word
//! speaks of the nearest number, and a redaction (which moves words closer to later numbers)
//! does not change what is found.

// Byte scanners name their text `b`, positions `i`, `s`, `e`.
#![allow(clippy::many_single_char_names)]

use crate::detect::EntityKind;

/// How far before a candidate context words are read (bytes).
pub(super) const BEFORE: usize = 48;
/// How far after (bytes). Streams hold back a number ending this close to the end of what
/// has arrived, so the words after it are seen.
pub(super) const AFTER: usize = 12;

/// What the words around a candidate say.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Around {
    /// Kinds named by a word (bit per [`bit`]).
    pub positive: u64,
    /// A word naming something that is not personal data (a version, order, price, unit).
    pub negative: bool,
    /// Only the weak word "number" (or "no", "nr") was seen: a phone hint.
    pub number_word: bool,
}

/// The bit of a kind in [`Around::positive`].
pub(super) fn bit(k: EntityKind) -> u64 {
    1u64 << (k as u32 % 64)
}

impl Around {
    /// Whether a word names `k`.
    pub(super) fn names(&self, k: EntityKind) -> bool {
        self.positive & bit(k) != 0
    }
}

use EntityKind as K;

/// Words (lowercase ASCII) that name kinds.
const POSITIVE: &[(&str, &[EntityKind])] = &[
    ("phone", &[K::Phone]),
    ("phones", &[K::Phone]),
    ("telephone", &[K::Phone]),
    ("tel", &[K::Phone]),
    ("call", &[K::Phone]),
    ("calls", &[K::Phone]),
    ("calling", &[K::Phone]),
    ("mobile", &[K::Phone]),
    ("cell", &[K::Phone]),
    ("cellphone", &[K::Phone]),
    ("fax", &[K::Phone]),
    ("contact", &[K::Phone]),
    ("reach", &[K::Phone]),
    ("dial", &[K::Phone]),
    ("whatsapp", &[K::Phone]),
    ("ring", &[K::Phone]),
    ("sms", &[K::Phone]),
    ("message", &[K::Phone]),
    ("messages", &[K::Phone]),
    ("text", &[K::Phone]),
    ("office", &[K::Phone]),
    ("desk", &[K::Phone]),
    ("answer", &[K::Phone]),
    ("registered", &[K::Phone]),
    ("hotline", &[K::Phone]),
    ("helpline", &[K::Phone]),
    ("landline", &[K::Phone]),
    ("handy", &[K::Phone]),
    ("telefon", &[K::Phone]),
    ("telefonnummer", &[K::Phone]),
    ("telefono", &[K::Phone]),
    ("portable", &[K::Phone]),
    ("movil", &[K::Phone]),
    ("cellulare", &[K::Phone]),
    ("celular", &[K::Phone]),
    ("ruf", &[K::Phone]),
    ("anruf", &[K::Phone]),
    ("anrufen", &[K::Phone]),
    ("rufen", &[K::Phone]),
    ("appelez", &[K::Phone]),
    ("appeler", &[K::Phone]),
    ("appelle", &[K::Phone]),
    ("llama", &[K::Phone]),
    ("llámame", &[K::Phone]),
    ("llamar", &[K::Phone]),
    ("chiama", &[K::Phone]),
    ("chiamami", &[K::Phone]),
    ("ligue", &[K::Phone]),
    ("ligar", &[K::Phone]),
    ("téléphone", &[K::Phone]),
    ("tél", &[K::Phone]),
    ("teléfono", &[K::Phone]),
    ("telefone", &[K::Phone]),
    ("móvil", &[K::Phone]),
    ("sécu", &[K::FrNir]),
    ("ssn", &[K::UsSsn]),
    ("ssns", &[K::UsSsn]),
    ("sin", &[K::CaSin]),
    ("nas", &[K::CaSin]),
    ("nino", &[K::UkNino]),
    ("ni", &[K::UkNino]),
    ("steuer", &[K::DeTaxId]),
    ("steuerid", &[K::DeTaxId]),
    ("idnr", &[K::DeTaxId]),
    ("steueridentifikationsnummer", &[K::DeTaxId]),
    ("identifikationsnummer", &[K::DeTaxId]),
    ("tin", &[K::DeTaxId]),
    ("taxid", &[K::DeTaxId]),
    ("insee", &[K::FrNir]),
    ("nir", &[K::FrNir]),
    ("secu", &[K::FrNir]),
    ("dni", &[K::EsDni]),
    ("nie", &[K::EsDni]),
    ("nif", &[K::EsDni, K::EuVat]),
    ("cf", &[K::ItFiscalCode]),
    ("fiscale", &[K::ItFiscalCode]),
    ("aadhaar", &[K::InAadhaar]),
    ("aadhar", &[K::InAadhaar]),
    ("uidai", &[K::InAadhaar]),
    ("uid", &[K::InAadhaar]),
    ("pan", &[K::InPan]),
    ("cpf", &[K::BrCpf]),
    ("passport", &[K::Passport]),
    ("passports", &[K::Passport]),
    ("passeport", &[K::Passport]),
    ("reisepass", &[K::Passport]),
    ("pasaporte", &[K::Passport]),
    ("passaporto", &[K::Passport]),
    ("passaporte", &[K::Passport]),
    ("vat", &[K::EuVat]),
    ("ust", &[K::EuVat]),
    ("ustid", &[K::EuVat]),
    ("tva", &[K::EuVat]),
    ("iva", &[K::EuVat]),
    ("btw", &[K::EuVat]),
    ("mwst", &[K::EuVat]),
    ("moms", &[K::EuVat]),
    ("card", &[K::CreditCard]),
    ("credit", &[K::CreditCard]),
    ("debit", &[K::CreditCard]),
    ("visa", &[K::CreditCard]),
    ("mastercard", &[K::CreditCard]),
    ("amex", &[K::CreditCard]),
    ("cc", &[K::CreditCard]),
    ("iban", &[K::Iban]),
    ("ip", &[K::Ipv4, K::Ipv6]),
    ("host", &[K::Ipv4, K::Ipv6]),
    ("server", &[K::Ipv4, K::Ipv6]),
];

/// Two-word names (both lowercase ASCII).
const POSITIVE_PAIRS: &[(&str, &str, &[EntityKind])] = &[
    ("social", "security", &[K::UsSsn, K::FrNir]),
    ("social", "insurance", &[K::CaSin]),
    ("national", "insurance", &[K::UkNino]),
    ("tax", "id", &[K::DeTaxId]),
    ("tax", "identification", &[K::DeTaxId]),
    ("codice", "fiscale", &[K::ItFiscalCode]),
    ("fiscal", "code", &[K::ItFiscalCode]),
    ("securite", "sociale", &[K::FrNir]),
    ("sécurité", "sociale", &[K::FrNir]),
];

/// Words that name something that is not personal data.
const NEGATIVE: &[&str] = &[
    "version",
    "versions",
    "ver",
    "build",
    "builds",
    "release",
    "released",
    "rev",
    "revision",
    "patch",
    "kernel",
    "isbn",
    "issn",
    "doi",
    "order",
    "orders",
    "tracking",
    "track",
    "shipment",
    "parcel",
    "invoice",
    "receipt",
    "serial",
    "sku",
    "ticket",
    "tickets",
    "issue",
    "commit",
    "sha",
    "hash",
    "checksum",
    "pid",
    "port",
    "page",
    "pages",
    "row",
    "rows",
    "population",
    "sold",
    "scored",
    "price",
    "prices",
    "total",
    "amount",
    "cost",
    "costs",
    "ratio",
    "lat",
    "lon",
    "lng",
    "latitude",
    "longitude",
    "coordinates",
    "coords",
    "timestamp",
    "epoch",
    "ref",
    "reference",
    "batch",
    "lot",
    "sku",
    "part",
    "model",
    "item",
    "product",
    "claim",
    "policy",
    "zip",
    "postcode",
    "seed",
    "step",
    "steps",
    "iteration",
    "epoch",
    "offset",
    "size",
    "count",
    "code",
    "case",
    "routing",
    "aba",
    "ean",
    "upc",
    "gtin",
    "barcode",
    "awb",
    "waybill",
    "license",
    "licence",
    "permit",
    "pedido",
    "ordine",
    "commande",
    "bestellung",
    "bestellnummer",
    "auftrag",
    "auftragsnummer",
    "vorgang",
    "vorgangsnummer",
    "rechnung",
    "rechnungsnummer",
    "factura",
    "fattura",
    "facture",
    "lieferschein",
    "albarán",
    "sendung",
    "sendungsnummer",
    "spedizione",
    "envío",
    "suivi",
    "seguimiento",
    "rastreio",
];

/// Words after a number that make it a quantity.
const UNITS_AFTER: &[&str] = &[
    "ms",
    "sec",
    "secs",
    "seconds",
    "minutes",
    "hours",
    "days",
    "bytes",
    "kb",
    "mb",
    "gb",
    "tb",
    "runs",
    "units",
    "items",
    "km",
    "kg",
    "usd",
    "eur",
    "gbp",
    "inr",
    "times",
    "rows",
    "records",
    "users",
    "downloads",
    "views",
    "points",
    "tokens",
    "requests",
    "steps",
    "iterations",
    "people",
    "persons",
    "inhabitants",
    "residents",
    "customers",
    "employees",
    "visitors",
    "votes",
    "copies",
    "cases",
    "deaths",
    "miles",
    "meters",
    "metres",
    "years",
    "months",
    "weeks",
    "dollars",
    "euros",
    "pounds",
    "rupees",
    "words",
    "pages",
    "lines",
    "files",
    "tests",
    "samples",
    "parameters",
    "params",
    "images",
    "pixels",
    "habitants",
    "personas",
    "einwohner",
    "abitanti",
    "habitantes",
];

/// The words of `b`, ASCII-lowercased: runs of letters, where any non-ASCII byte counts as a
/// letter ("téléphone", "llámame" are words; non-ASCII capitals are not lowercased, so the
/// lists hold lowercase spellings).
fn words(b: &[u8]) -> Vec<String> {
    b.split(|&c| !(c.is_ascii_alphabetic() || c >= 0x80))
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(&w.to_ascii_lowercase()).into_owned())
        .collect()
}

/// Stems of phone words that take endings ("answering", "called", "reachable").
const PHONE_STEMS: &[&str] = &[
    "answer", "call", "phone", "telephon", "reach", "dial", "contact", "mobile", "whatsapp",
    "ring", "fax", "text",
];

fn positive_of(w: &str) -> Option<&'static [EntityKind]> {
    POSITIVE
        .iter()
        .find(|(p, _)| *p == w)
        .map(|(_, k)| *k)
        .or_else(|| {
            PHONE_STEMS
                .iter()
                .any(|s| w.len() > s.len() && w.starts_with(s))
                .then_some(&[EntityKind::Phone][..])
        })
}

/// Whether the first word of `b` names a kind ("Office" in "618-226-1460-Office").
pub(super) fn names_something(b: &[u8]) -> bool {
    words(b).first().is_some_and(|w| positive_of(w).is_some())
}

/// Reads the words around `start..end` in `b`.
pub(super) fn around(b: &[u8], start: usize, end: usize) -> Around {
    let mut a = Around::default();
    // Before: back to the previous digit or mask bracket, at most BEFORE bytes.
    let mut s = start;
    let floor = start.saturating_sub(BEFORE);
    while s > floor && !(b[s - 1].is_ascii_digit() || matches!(b[s - 1], b'[' | b']')) {
        s -= 1;
    }
    // Whitespace-separated tokens, nearest first; a token holding an e-mail address or a
    // mask ends the window, and only the five nearest words count (as Presidio's window).
    let mut before: Vec<String> = Vec::new();
    for token in b[s..start].rsplit(u8::is_ascii_whitespace) {
        if token.contains(&b'@') {
            break;
        }
        let mut w = words(token);
        w.reverse();
        before.extend(w);
        if before.len() >= 5 {
            break;
        }
    }
    before.truncate(5);
    before.reverse();
    // Nearest first: every word naming a kind counts ("Aadhaar card number"), up to the first
    // word naming something else, which counts only when no name came before it.
    let mut k = before.len();
    while k > 0 {
        let w = before[k - 1].as_str();
        if k >= 2
            && let Some((_, _, kinds)) = POSITIVE_PAIRS
                .iter()
                .find(|(x, y, _)| *x == before[k - 2] && *y == w)
        {
            for &kind in *kinds {
                a.positive |= bit(kind);
            }
            k -= 2;
            continue;
        }
        if let Some(kinds) = positive_of(w) {
            for &kind in kinds {
                a.positive |= bit(kind);
            }
        } else if NEGATIVE.contains(&w) {
            a.negative = a.positive == 0;
            break;
        } else if matches!(w, "number" | "no" | "nr" | "num") {
            a.number_word = true;
        }
        k -= 1;
    }
    // After: the first word, if it is a name or a unit.
    let mut e = end;
    let ceil = (end + AFTER).min(b.len());
    while e < ceil && !(b[e].is_ascii_digit() || matches!(b[e], b'[' | b']')) {
        e += 1;
    }
    let after = words(&b[end..e]);
    if let Some(w) = after.first() {
        if let Some(kinds) = positive_of(w) {
            for &kind in kinds {
                a.positive |= bit(kind);
            }
        } else if UNITS_AFTER.contains(&w.as_str()) || NEGATIVE.contains(&w.as_str()) {
            a.negative = true;
        }
    }
    a
}

/// A candidate's score after its context: +0.35 for a word naming its kind, +0.15 for phones
/// after a bare "number"; a word naming something else takes 0.45 off, or 0.2 off a candidate
/// whose check alone makes it near-certain (base ≥ 0.8: IBAN, VAT, CPF, NIR, ...).
pub(super) fn adjust(kind: EntityKind, base: f32, a: &Around) -> f32 {
    let mut s = base;
    if a.names(kind) {
        s += 0.35;
    } else if kind == EntityKind::Phone && a.number_word && a.positive == 0 {
        s += 0.15;
    }
    if a.negative {
        s -= if base >= 0.8 { 0.2 } else { 0.45 };
    }
    s.clamp(0.0, 1.0)
}
