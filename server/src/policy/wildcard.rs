//! IAM wildcards: `*` matches any run of characters (`/` included), `?`
//! exactly one.

/// Whether `value` matches `pattern`; letters compare without case when
/// `ignore_case`.
pub(crate) fn matches(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let same = |a: char, b: char| a == b || (ignore_case && a.to_lowercase().eq(b.to_lowercase()));
    // Greedy match with one backtrack point: the last `*` seen.
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || same(p[pi], v[vi])) {
            pi += 1;
            vi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("s3:Get*", "s3:GetObject", false));
        assert!(matches("s3:get*", "s3:GetObject", true));
        assert!(!matches("s3:get*", "s3:GetObject", false));
        assert!(matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b/c", false));
        assert!(!matches("arn:aws:s3:::b/*", "arn:aws:s3:::b", false));
        assert!(matches("a?c", "abc", false));
        assert!(!matches("a?c", "ac", false));
        assert!(matches("*a*b*", "xxaxxbxx", false));
        assert!(!matches("*a*b", "xxaxxbxx", false));
        assert!(matches("*", "", false));
        assert!(matches("", "", false));
        assert!(!matches("", "x", false));
    }
}
