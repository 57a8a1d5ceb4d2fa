//! Glob patterns for suppressions: `*` matches any run of characters
//! (including none), `?` exactly one; everything else matches itself,
//! case-sensitively. `system:serviceaccount:ci:*` is every service account of
//! the `ci` namespace; `rbac.*` every RBAC rule.

/// Whether `text` matches `pattern` as a whole.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point (the last `*`): linear in
    // practice, never exponential.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some('?') => {
                p += 1;
                t += 1;
            }
            Some(&literal) if literal == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Whether a pattern has any wildcard (a pattern without one names exactly one value).
pub fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_values() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("rbac.*", "rbac.wildcard_grant"));
        assert!(!glob_match("rbac.*", "workload.exec"));
        assert!(glob_match(
            "system:serviceaccount:ci:*",
            "system:serviceaccount:ci:deployer"
        ));
        assert!(!glob_match(
            "system:serviceaccount:ci:*",
            "system:serviceaccount:cicd:deployer"
        ));
        assert!(glob_match("10.0.?.*", "10.0.3.17"));
        assert!(!glob_match("10.0.?.*", "10.0.33.17"));
        assert!(glob_match("*@example.com", "alice@example.com"));
        assert!(!glob_match("alice@example.com", "alice@example.com.evil"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("**", "x"));
        assert!(!glob_match("", "x"));
        assert!(is_literal("alice@example.com"));
        assert!(!is_literal("*@example.com"));
    }

    #[test]
    fn matching_agrees_with_a_naive_definition() {
        // Exhaustive over short strings of a small alphabet: the iterative
        // matcher agrees with the recursive definition.
        fn naive(pattern: &[char], text: &[char]) -> bool {
            match pattern.first() {
                None => text.is_empty(),
                Some('*') => {
                    naive(&pattern[1..], text) || (!text.is_empty() && naive(pattern, &text[1..]))
                }
                Some('?') => !text.is_empty() && naive(&pattern[1..], &text[1..]),
                Some(c) => text.first() == Some(c) && naive(&pattern[1..], &text[1..]),
            }
        }
        let alphabet = ['a', 'b', '*', '?'];
        let mut patterns = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = patterns
                .iter()
                .flat_map(|prefix| alphabet.iter().map(move |c| format!("{prefix}{c}")))
                .collect();
            patterns.extend(longer);
            patterns.sort();
            patterns.dedup();
        }
        let texts: Vec<String> = patterns
            .iter()
            .filter(|pattern| is_literal(pattern))
            .cloned()
            .collect();
        for pattern in &patterns {
            let pattern_chars: Vec<char> = pattern.chars().collect();
            for text in &texts {
                let text_chars: Vec<char> = text.chars().collect();
                assert_eq!(
                    glob_match(pattern, text),
                    naive(&pattern_chars, &text_chars),
                    "pattern {pattern:?} text {text:?}"
                );
            }
        }
    }
}
