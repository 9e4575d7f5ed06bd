//! Phone numbers validated against real numbering plans — libphonenumber's metadata, as the
//! `phonenumber` crate ships it: a candidate is a valid international number, or a valid
//! national number of one of the configured regions written as people there write it (with
//! the trunk prefix, such as the `0` of `020 7946 0958`, where numbers are written with it).
//!
//! The crate's own parser validates through a process-wide regex cache of 100 entries behind a
//! mutex, which the 2 500 patterns of the metadata keep evicting (≈ 14 µs a number here). The
//! patterns are compiled once instead: per configured region when the detector is built, per
//! country code on the first international number of that code.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use phonenumber::Type;
use phonenumber::metadata::{DATABASE, Descriptor, Metadata};

/// The kinds of number a subscriber can be called on.
const TYPES: [Type; 10] = [
    Type::FixedLine,
    Type::Mobile,
    Type::TollFree,
    Type::PremiumRate,
    Type::SharedCost,
    Type::PersonalNumber,
    Type::Voip,
    Type::Pager,
    Type::Uan,
    Type::Voicemail,
];

/// A numbering plan's pattern, anchored. The metadata's patterns are written with
/// insignificant whitespace, and `\d` in them means an ASCII digit: compiled without Unicode
/// classes, a plan is about 50 times smaller (Unicode's `\d` is some sixty ranges, repeated in
/// the automaton at every `\d{n}`: ~5 MB a region). The numbers they are matched against are
/// ASCII digits already; a pattern that needs Unicode mode is compiled in it.
fn plan_regex(pattern: &str) -> Option<regex::Regex> {
    let anchored = format!("^(?:{pattern})$");
    let build = |unicode: bool| {
        regex::RegexBuilder::new(&anchored)
            .ignore_whitespace(true)
            .unicode(unicode)
            .build()
            .ok()
    };
    build(false).or_else(|| build(true))
}

/// One pattern of a numbering plan, compiled.
#[derive(Debug)]
struct Pattern {
    lengths: Vec<u16>,
    re: regex::Regex,
}

impl Pattern {
    fn new(d: &Descriptor) -> Option<Self> {
        let re = plan_regex(d.national_number().as_str())?;
        Some(Self {
            lengths: d.possible_length().to_vec(),
            re,
        })
    }

    fn matches(&self, nsn: &str) -> bool {
        let len = u16::try_from(nsn.len()).unwrap_or(u16::MAX);
        (self.lengths.is_empty() || self.lengths.contains(&len)) && self.re.is_match(nsn)
    }
}

/// How a region writes its numbers: the pattern a national significant number matches and
/// after which of its groups a separator goes ("$1 $2-$3" → after the first and second).
#[derive(Debug)]
struct Format {
    re: regex::Regex,
    breaks_after: Vec<usize>,
}

impl Format {
    fn new(pattern: &str, format: &str) -> Option<Self> {
        let re = plan_regex(pattern)?;
        // "$1 $2-$3": a separator between $n and $n+1 when text stands between them.
        let mut breaks_after = Vec::new();
        let bytes = format.as_bytes();
        let mut last: Option<usize> = None;
        let mut text_since = false;
        let mut k = 0;
        while k < bytes.len() {
            if bytes[k] == b'$' && bytes.get(k + 1).is_some_and(u8::is_ascii_digit) {
                let n = usize::from(bytes[k + 1] - b'0');
                if let Some(prev) = last
                    && text_since
                {
                    breaks_after.push(prev);
                }
                last = Some(n);
                text_since = false;
                k += 2;
            } else {
                text_since = true;
                k += 1;
            }
        }
        Some(Self { re, breaks_after })
    }

    /// The digit positions in `nsn` where this format puts a separator, if it formats `nsn`.
    fn breaks(&self, nsn: &str) -> Option<Vec<usize>> {
        let caps = self.re.captures(nsn)?;
        Some(
            self.breaks_after
                .iter()
                .filter_map(|&g| caps.get(g).map(|m| m.end()))
                .collect(),
        )
    }
}

/// The formats of a region, or of the main region of its country code when it has none of its
/// own (Canada writes its numbers as the United States do, and only the latter lists them).
fn formats_of(meta: &Metadata) -> Vec<Format> {
    let own = || meta.formats().iter().chain(meta.international_formats());
    let main = || {
        DATABASE
            .by_code(&meta.country_code())
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.is_main_country_for_code())
    };
    let mut out: Vec<Format> = own()
        .filter_map(|f| Format::new(f.pattern().as_str(), f.format()))
        .collect();
    // Brazil writes the ninth digit of a mobile apart: "(31) 9 8270-5788".
    if meta.id() == "BR" {
        out.extend(Format::new(r"(\d{2})(9)(\d{4})(\d{4})", "($1) $2 $3-$4"));
    }
    if out.is_empty()
        && let Some(m) = main()
    {
        out = m
            .formats()
            .iter()
            .chain(m.international_formats())
            .filter_map(|f| Format::new(f.pattern().as_str(), f.format()))
            .collect();
    }
    out
}

/// A region's numbering plan, compiled.
#[derive(Debug)]
struct Plan {
    id: String,
    /// The trunk prefix ("0"), if the region has one.
    national_prefix: Option<String>,
    general: Pattern,
    types: Vec<Pattern>,
    formats: Vec<Format>,
}

impl Plan {
    fn new(meta: &Metadata) -> Option<Self> {
        let d = meta.descriptors();
        Some(Self {
            id: meta.id().to_owned(),
            national_prefix: meta
                .national_prefix()
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
            general: Pattern::new(d.general())?,
            types: TYPES
                .iter()
                .filter_map(|&t| d.get(t))
                .filter_map(Pattern::new)
                .collect(),
            formats: formats_of(meta),
        })
    }

    /// Whether the candidate's separators (`breaks`, digit positions in `nsn`) fall where one
    /// of the region's formats puts them ("020 7946 0958", not "0207 94 60958"); no
    /// separators always do.
    fn grouped_as_written(&self, nsn: &str, breaks: &[usize]) -> bool {
        breaks.is_empty()
            || self.formats.iter().any(|f| {
                f.breaks(nsn)
                    .is_some_and(|fb| breaks.iter().all(|b| fb.contains(b)))
            })
    }

    /// Whether `nsn` (the national significant number) is a number of this plan.
    fn valid(&self, nsn: &str) -> bool {
        self.general.matches(nsn) && self.types.iter().any(|p| p.matches(nsn))
    }
}

/// The plans of every country calling code, compiled on first use.
static BY_CODE: LazyLock<Vec<OnceLock<Vec<Plan>>>> =
    LazyLock::new(|| (0..1000).map(|_| OnceLock::new()).collect());

fn plans_of(code: u16) -> &'static [Plan] {
    let Some(slot) = BY_CODE.get(usize::from(code)) else {
        return &[];
    };
    slot.get_or_init(|| {
        DATABASE
            .by_code(&code)
            .unwrap_or_default()
            .into_iter()
            .filter_map(Plan::new)
            .collect()
    })
}

/// The regions' plans compiled so far (a plan is a few dozen regexes: compiled once per
/// process, shared by every detector).
static BY_REGION: LazyLock<Mutex<HashMap<String, Arc<Plan>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn plan_of(code: &str, meta: &Metadata) -> Option<Arc<Plan>> {
    let mut plans = BY_REGION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(p) = plans.get(code) {
        return Some(p.clone());
    }
    let plan = Arc::new(Plan::new(meta)?);
    plans.insert(code.to_owned(), plan.clone());
    Some(plan)
}

/// A configured region: its plan, and whether a national number must be written with the
/// trunk prefix.
#[derive(Debug, Clone)]
struct Region {
    plan: Arc<Plan>,
    prefix_required: bool,
}

/// Configured phone regions.
#[derive(Debug, Clone)]
pub(super) struct Regions {
    regions: Vec<Region>,
}

/// A region code that is not one.
#[derive(Debug, Clone)]
pub(super) struct UnknownRegion(pub String);

impl Regions {
    pub(super) fn new<S: AsRef<str>>(
        codes: impl IntoIterator<Item = S>,
    ) -> Result<Self, UnknownRegion> {
        let mut regions: Vec<Region> = Vec::new();
        for code in codes {
            let code = code.as_ref().trim().to_ascii_uppercase();
            let code = if code == "UK" { "GB".to_owned() } else { code };
            let meta = DATABASE
                .by_id(code.as_str())
                .filter(|_| code.len() == 2)
                .ok_or_else(|| UnknownRegion(code.clone()))?;
            let plan = plan_of(&code, meta).ok_or_else(|| UnknownRegion(code.clone()))?;
            // Where the trunk prefix is how a national number is written ("020 7946 0958",
            // "030 123456", "06 12 34 56 78"), a number without it is no national number.
            // Not so in NANP ("1" optional), Brazil ("(11) 96123-4567": the prefix goes with
            // a carrier code) and India (mobiles written "98765 43210").
            let optional = meta.country_code() == 1 || matches!(code.as_str(), "BR" | "IN");
            if !regions.iter().any(|r| r.plan.id == plan.id) {
                regions.push(Region {
                    prefix_required: plan.national_prefix.is_some() && !optional,
                    plan,
                });
            }
        }
        Ok(Self { regions })
    }

    /// The regions among `codes` that exist (the defaults: never fails).
    pub(super) fn lenient(codes: impl IntoIterator<Item = &'static str>) -> Self {
        let mut regions = Vec::new();
        for code in codes {
            if let Ok(r) = Self::new([code]) {
                regions.extend(r.regions);
            }
        }
        Self { regions }
    }

    /// The region codes, in order.
    pub(super) fn codes(&self) -> Vec<&str> {
        self.regions.iter().map(|r| r.plan.id.as_str()).collect()
    }
}

/// What validation says about a phone-shaped candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Validity {
    /// A valid international number (`+` or `00` and a country code).
    International,
    /// A valid national number of a configured region, grouped as the region writes it.
    National,
    /// A valid national number grouped as no format of its region groups it
    /// ("7784-2231-09"): as often an order or reference number.
    NationalOddlyGrouped,
    /// International shape, invalid number.
    InvalidInternational,
    /// Not valid anywhere configured.
    Invalid,
}

/// Validates a candidate: `s` its bytes (digits, `+`, separators, parentheses; no extension),
/// `digits` its digits, `breaks` the digit positions where a separator stood.
pub(super) fn validate(s: &[u8], digits: &[u8], breaks: &[usize], regions: &Regions) -> Validity {
    let Ok(d) = std::str::from_utf8(digits) else {
        return Validity::Invalid;
    };
    let intl = s.first() == Some(&b'+');
    let double_zero = !intl && d.len() >= 11 && d.starts_with("00");
    if intl || double_zero {
        let rest = if double_zero { &d[2..] } else { d };
        return if international(rest) {
            Validity::International
        } else {
            Validity::InvalidInternational
        };
    }
    let mut odd = false;
    for r in &regions.regions {
        let p = &r.plan;
        let stripped = p
            .national_prefix
            .as_deref()
            .and_then(|np| d.strip_prefix(np));
        let nsn = match stripped {
            Some(nsn) if p.valid(nsn) => nsn,
            _ if !r.prefix_required && p.valid(d) => d,
            _ => continue,
        };
        let offset = d.len() - nsn.len();
        let inner: Vec<usize> = breaks
            .iter()
            .filter(|&&b| b > offset)
            .map(|&b| b - offset)
            .collect();
        if p.grouped_as_written(nsn, &inner) {
            return Validity::National;
        }
        odd = true;
    }
    if odd {
        Validity::NationalOddlyGrouped
    } else {
        Validity::Invalid
    }
}

/// `d`: the digits after `+`. The country code is the first 1–3 digits that name one (codes
/// are prefix-free); "+41 (0)85 …" writes the trunk prefix after it, which is dropped.
fn international(d: &str) -> bool {
    for len in 1..=3.min(d.len()) {
        let Ok(code) = d[..len].parse::<u16>() else {
            return false;
        };
        let plans = plans_of(code);
        if plans.is_empty() {
            continue;
        }
        let nsn = &d[len..];
        return plans.iter().any(|p| {
            p.valid(nsn)
                || p.national_prefix
                    .as_deref()
                    .and_then(|np| nsn.strip_prefix(np))
                    .is_some_and(|n| p.valid(n))
        });
    }
    false
}
