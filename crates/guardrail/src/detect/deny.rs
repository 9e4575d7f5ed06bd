//! Deny lists of words and phrases (Aho-Corasick, case-insensitive, whole words) and named
//! regular expressions.

use aho_corasick::{AhoCorasick, MatchKind};

/// A list of denied words and phrases, matched case-insensitively as whole words.
#[derive(Debug, Clone)]
pub struct DenyList {
    ac: AhoCorasick,
    terms: Vec<String>,
}

/// Why a deny list or regex could not be built.
#[derive(Debug, thiserror::Error)]
#[error("invalid guardrail pattern: {0}")]
pub struct PatternError(String);

impl DenyList {
    /// A list of `terms`.
    pub fn new<I, S>(terms: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let terms: Vec<String> = terms.into_iter().map(Into::into).collect();
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&terms)
            .map_err(|e| PatternError(e.to_string()))?;
        Ok(Self { ac, terms })
    }

    /// Whole-word matches in `text`: (start, end, term index).
    pub fn find(&self, text: &str) -> Vec<(usize, usize, usize)> {
        let b = text.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        self.ac
            .find_iter(b)
            .filter(|m| {
                (m.start() == 0 || !word(b[m.start() - 1]))
                    && (m.end() == b.len() || !word(b[m.end()]))
            })
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
            .collect()
    }

    /// The term at `index`.
    pub fn term(&self, index: usize) -> &str {
        &self.terms[index]
    }
}

/// Named regular expressions, searched together.
#[derive(Debug, Clone)]
pub struct RegexList {
    names: Vec<String>,
    set: regex::RegexSet,
    each: Vec<regex::Regex>,
}

impl RegexList {
    /// A list of `(name, pattern)`.
    pub fn new<I, N, P>(patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = (N, P)>,
        N: Into<String>,
        P: AsRef<str>,
    {
        let mut names = Vec::new();
        let mut pats = Vec::new();
        for (n, p) in patterns {
            names.push(n.into());
            pats.push(p.as_ref().to_owned());
        }
        let set = regex::RegexSet::new(&pats).map_err(|e| PatternError(e.to_string()))?;
        let each = pats
            .iter()
            .map(|p| regex::Regex::new(p).map_err(|e| PatternError(e.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(Self { names, set, each })
    }

    /// Matches in `text`: (start, end, pattern index).
    pub fn find(&self, text: &str) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for i in self.set.matches(text) {
            for m in self.each[i].find_iter(text) {
                out.push((m.start(), m.end(), i));
            }
        }
        out
    }

    /// The name of pattern `index`.
    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_case_insensitive() {
        let d = DenyList::new(["project falcon", "secret"]).unwrap();
        assert_eq!(
            d.find("About Project FALCON, the secret."),
            [(6, 20, 0), (26, 32, 1)]
        );
        assert!(d.find("secretary and secrets").is_empty());
    }

    #[test]
    fn named_regexes() {
        let r = RegexList::new([("ticket", r"TCK-\d{4}")]).unwrap();
        assert_eq!(r.find("see TCK-1234"), [(4, 12, 0)]);
        assert_eq!(r.name(0), "ticket");
    }
}
