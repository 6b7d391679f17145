//! Redis glob matching (`stringmatchlen`). Placeholder port; replaced by the full one.

/// Whether `string` matches the Redis glob `pattern`.
pub fn stringmatch(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    fn m(p: &[u8], s: &[u8], nocase: bool, depth: u32) -> bool {
        if depth > 1000 {
            return false;
        }
        let (mut pi, mut si) = (0usize, 0usize);
        while pi < p.len() && si < s.len() {
            match p[pi] {
                b'*' => {
                    while pi + 1 < p.len() && p[pi + 1] == b'*' {
                        pi += 1;
                    }
                    if pi + 1 == p.len() {
                        return true;
                    }
                    for k in si..s.len() {
                        if m(&p[pi + 1..], &s[k..], nocase, depth + 1) {
                            return true;
                        }
                    }
                    return false;
                }
                b'?' => si += 1,
                b'[' => {
                    pi += 1;
                    let not = pi < p.len() && p[pi] == b'^';
                    if not {
                        pi += 1;
                    }
                    let mut matched = false;
                    loop {
                        if pi < p.len() && p[pi] == b'\\' && pi + 1 < p.len() {
                            pi += 1;
                            if p[pi] == s[si] {
                                matched = true;
                            }
                        } else if pi < p.len() && p[pi] == b']' {
                            break;
                        } else if pi >= p.len() {
                            pi = p.len().saturating_sub(1);
                            break;
                        } else if pi + 2 < p.len() && p[pi + 1] == b'-' {
                            let (mut a, mut b) = (p[pi], p[pi + 2]);
                            if a > b {
                                std::mem::swap(&mut a, &mut b);
                            }
                            pi += 2;
                            if s[si] >= a && s[si] <= b {
                                matched = true;
                            }
                        } else if p[pi] == s[si] {
                            matched = true;
                        }
                        pi += 1;
                    }
                    if not {
                        matched = !matched;
                    }
                    if !matched {
                        return false;
                    }
                    si += 1;
                }
                b'\\' if pi + 1 < p.len() => {
                    pi += 1;
                    if p[pi] != s[si] && !(nocase && p[pi].eq_ignore_ascii_case(&s[si])) {
                        return false;
                    }
                    si += 1;
                }
                c => {
                    if c != s[si] && !(nocase && c.eq_ignore_ascii_case(&s[si])) {
                        return false;
                    }
                    si += 1;
                }
            }
            pi += 1;
            if si == s.len() {
                while pi < p.len() && p[pi] == b'*' {
                    pi += 1;
                }
                break;
            }
        }
        pi == p.len() && si == s.len()
    }
    m(pattern, string, nocase, 0)
}
