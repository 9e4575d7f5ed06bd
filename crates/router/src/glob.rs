//! `*` and `?` globs over model names.

/// Whether `text` matches `pattern` (`*`: any run of characters, `?`: one character).
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("gpt-4*", "gpt-4o-mini"));
        assert!(glob_match(
            "claude-*-sonnet-*",
            "claude-3-5-sonnet-20241022"
        ));
        assert!(glob_match("*", ""));
        assert!(glob_match("gpt-?o", "gpt-4o"));
        assert!(!glob_match("gpt-4*", "gpt-3.5-turbo"));
        assert!(!glob_match("a*b", "acbd"));
    }
}
