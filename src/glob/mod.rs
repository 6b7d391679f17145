//! Redis glob-style pattern matching on raw bytes.
//!
//! [`stringmatch`] is the source of truth: a line-by-line port of `stringmatchlen_impl` from
//! Redis 7.2's `util.c`, quirks included. It works on bytes, never on UTF-8, and compares bytes
//! inside `[a-z]` ranges as C `char`, which is signed on x86-64: a range whose end is `0x80..=0xff`
//! is a range down to a negative number, so `[a-\xff]` holds `0x00..=0x61` and `0xff` but not `b`.
//!
//! Two protections against abusive patterns come with it, both from upstream:
//!
//! - CVE-2022-36021 (7.0.10): once the rest of the pattern after a `*` has failed at every
//!   position of the string, no earlier `*` can succeed either (`skipLongerMatches`), so the
//!   search stops instead of backtracking exponentially.
//! - CVE-2024-31228 (7.2.6): recursion stops [`MAX_NESTING`] levels deep (`if (nesting > 1000)
//!   return 0;`). A pattern that needs more than 1000 nested `*` therefore never matches, even
//!   where the glob would; for example `*?` repeated 50 000 times does not match 50 000 `a`s.
//!   Redis 7.2.0 to 7.2.5 lacks this cap and overflows the stack instead.
//!
//! [`stringmatch`] still costs O(pattern × string) on shapes like `*aaaa…ab` (about a
//! millisecond for a 1 KiB pattern against a 1 KiB string), as Redis does. [`Compiled`] is the
//! same language tokenised once, for the pattern index: it matches case-sensitively without
//! recursion or backtracking, finding literal segments with `memchr::memmem` and long wildcard
//! segments with shift-and, so a 1 KiB pattern against a 64 KiB channel stays under a
//! millisecond. Property tests check it against [`stringmatch`], and the index uses its
//! [`Token`]s to file patterns by their fixed head and tail.
//!
//! Nothing here takes a lock; matching allocates only to search long wildcard segments.

use memchr::memmem;

/// Deepest `*` recursion Redis 7.2.6+ follows before answering "no match" (util.c).
pub const MAX_NESTING: usize = 1000;

/// Whether `string` matches the glob `pattern`, exactly as Redis 7.2's `stringmatchlen` decides.
///
/// Redis quirks kept on purpose: a non-empty pattern never matches the empty string (`*` does
/// not match `""`); an unterminated `[` runs to the end of the pattern (`[^` matches any one
/// byte, `[` alone matches nothing); `[a-` at the end holds `a` and `-`, and `[a-]` is the range
/// `]`..=`a` and keeps reading; a trailing `\` is a literal backslash; `\` escapes compare
/// case-sensitively even when `nocase` is set.
pub fn stringmatch(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer_matches = false;
    stringmatch_impl(pattern, string, nocase, &mut skip_longer_matches, 0)
}

/// `pattern[i]`, or the NUL terminator that C reads one past the end of an sds string.
fn at(pattern: &[u8], i: usize) -> u8 {
    pattern.get(i).copied().unwrap_or(0)
}

/// C `tolower` in the "C" locale, applied to a (possibly negative) `char` promoted to `int`.
fn c_tolower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// A byte as C sees it through a signed `char`.
fn c_char(b: u8) -> i32 {
    i32::from(b as i8)
}

/// `pattern[p..]` is C's `pattern`/`patternLen`, `string[s..]` its `string`/`stringLen`.
fn stringmatch_impl(
    pattern: &[u8],
    string: &[u8],
    nocase: bool,
    skip_longer_matches: &mut bool,
    nesting: usize,
) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    let (mut p, mut s) = (0, 0);
    while p < pattern.len() && s < string.len() {
        match pattern[p] {
            b'*' => {
                while p + 1 < pattern.len() && pattern[p + 1] == b'*' {
                    p += 1;
                }
                if pattern.len() - p == 1 {
                    return true;
                }
                while s < string.len() {
                    let rest = &pattern[p + 1..];
                    if stringmatch_impl(
                        rest,
                        &string[s..],
                        nocase,
                        skip_longer_matches,
                        nesting + 1,
                    ) {
                        return true;
                    }
                    if *skip_longer_matches {
                        return false;
                    }
                    s += 1;
                }
                // The rest failed from every position; a longer match for an earlier `*` would
                // only start it later, so tell every caller to give up.
                *skip_longer_matches = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let not = at(pattern, p) == b'^';
                if not {
                    p += 1;
                }
                let mut matched = false;
                loop {
                    let rem = pattern.len() - p;
                    if at(pattern, p) == b'\\' && rem >= 2 {
                        p += 1;
                        if pattern[p] == string[s] {
                            matched = true;
                        }
                    } else if at(pattern, p) == b']' {
                        break;
                    } else if rem == 0 {
                        p -= 1;
                        break;
                    } else if rem >= 3 && pattern[p + 1] == b'-' {
                        let (mut start, mut end) = (c_char(pattern[p]), c_char(pattern[p + 2]));
                        let mut c = c_char(string[s]);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = c_tolower(start);
                            end = c_tolower(end);
                            c = c_tolower(c);
                        }
                        p += 2;
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if nocase {
                        if pattern[p].eq_ignore_ascii_case(&string[s]) {
                            matched = true;
                        }
                    } else if pattern[p] == string[s] {
                        matched = true;
                    }
                    p += 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
            }
            b => {
                let mut b = b;
                if b == b'\\' && pattern.len() - p >= 2 {
                    p += 1;
                    b = pattern[p];
                }
                let equal = if nocase {
                    b.eq_ignore_ascii_case(&string[s])
                } else {
                    b == string[s]
                };
                if !equal {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == string.len() {
            while at(pattern, p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p == pattern.len() && s == string.len()
}

/// One unit of a pattern as Redis's matcher consumes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// A byte that must appear as is (plain, or escaped with `\`).
    Literal(u8),
    /// `?`: any one byte.
    Any,
    /// `[...]`: one byte from a set; the index into [`Compiled`]'s class table.
    Class(u32),
    /// A run of `*`: any sequence of bytes.
    Star,
}

/// A class as a 256-bit set of bytes.
type ByteSet = [u64; 4];

fn set_insert(set: &mut ByteSet, b: u8) {
    set[usize::from(b >> 6)] |= 1 << (b & 63);
}

fn set_contains(set: &ByteSet, b: u8) -> bool {
    set[usize::from(b >> 6)] & (1 << (b & 63)) != 0
}

/// Parses the class whose `[` is at `open`, exactly as `stringmatch` walks it (case-sensitive).
/// Returns the set and the index just past the class.
fn parse_class(pattern: &[u8], open: usize) -> (ByteSet, usize) {
    let mut set = [0; 4];
    let mut p = open + 1;
    let not = at(pattern, p) == b'^';
    if not {
        p += 1;
    }
    loop {
        let rem = pattern.len() - p;
        if at(pattern, p) == b'\\' && rem >= 2 {
            p += 1;
            set_insert(&mut set, pattern[p]);
        } else if at(pattern, p) == b']' {
            break;
        } else if rem == 0 {
            p -= 1;
            break;
        } else if rem >= 3 && pattern[p + 1] == b'-' {
            let (a, b) = (c_char(pattern[p]), c_char(pattern[p + 2]));
            let (lo, hi) = (a.min(b), a.max(b));
            for byte in 0..=u8::MAX {
                if (lo..=hi).contains(&c_char(byte)) {
                    set_insert(&mut set, byte);
                }
            }
            p += 2;
        } else {
            set_insert(&mut set, pattern[p]);
        }
        p += 1;
    }
    if not {
        set = set.map(|w| !w);
    }
    (set, p + 1)
}

/// Middle segments with wildcards at least this long are searched with shift-and instead of
/// being tried at every position, which would cost O(n·m).
const SHIFT_AND_MIN: usize = 8;

/// A run of single-byte tokens between two `*` (or an end of the pattern).
#[derive(Debug)]
struct Segment {
    start: usize,
    end: usize,
    /// The bytes, when every token is a literal: found with `memmem`.
    literal: Option<Box<[u8]>>,
}

impl Segment {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// A pattern tokenised once and matched case-sensitively without recursion.
///
/// It decides exactly what `stringmatch(pattern, s, false)` decides: a pattern is a sequence of
/// segments of single-byte tokens separated by `*`, the first segment is anchored at the start,
/// the last at the end, and each middle one is placed leftmost (which is optimal for globs).
/// On top of plain glob semantics it keeps Redis's two deviations: the empty string only matches
/// the empty pattern, and a pattern whose match would need more than [`MAX_NESTING`] nested `*`
/// never matches.
#[derive(Debug)]
pub struct Compiled {
    tokens: Box<[Token]>,
    classes: Box<[ByteSet]>,
    segments: Box<[Segment]>,
    /// Redis's nesting cap rules every match out.
    never: bool,
}

impl Compiled {
    /// Tokenises `pattern` the way `stringmatch` consumes it.
    pub fn new(pattern: &[u8]) -> Self {
        let mut tokens = Vec::new();
        let mut classes = Vec::new();
        let mut p = 0;
        while p < pattern.len() {
            let token = match pattern[p] {
                b'*' => {
                    p += 1;
                    if tokens.last() == Some(&Token::Star) {
                        continue;
                    }
                    Token::Star
                }
                b'?' => {
                    p += 1;
                    Token::Any
                }
                b'[' => {
                    let (set, next) = parse_class(pattern, p);
                    p = next;
                    classes.push(set);
                    Token::Class(u32::try_from(classes.len() - 1).unwrap_or(u32::MAX))
                }
                b'\\' if pattern.len() - p >= 2 => {
                    p += 2;
                    Token::Literal(pattern[p - 1])
                }
                b => {
                    p += 1;
                    Token::Literal(b)
                }
            };
            tokens.push(token);
        }
        let stars = tokens.iter().filter(|t| **t == Token::Star).count();
        let never = stars > MAX_NESTING + 1
            || (stars == MAX_NESTING + 1 && tokens.last() != Some(&Token::Star));
        let mut segments = Vec::with_capacity(stars + 1);
        let mut start = 0;
        for (i, t) in tokens
            .iter()
            .chain(std::iter::once(&Token::Star))
            .enumerate()
        {
            if *t == Token::Star {
                let literal: Option<Box<[u8]>> = tokens[start..i]
                    .iter()
                    .map(|t| match t {
                        Token::Literal(b) => Some(*b),
                        _ => None,
                    })
                    .collect();
                segments.push(Segment {
                    start,
                    end: i,
                    literal,
                });
                start = i + 1;
            }
        }
        Compiled {
            tokens: tokens.into(),
            classes: classes.into(),
            segments: segments.into(),
            never,
        }
    }

    /// The tokens, with runs of `*` collapsed into one [`Token::Star`].
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Whether the class `idx` holds `b`.
    pub fn class_contains(&self, idx: u32, b: u8) -> bool {
        self.classes
            .get(idx as usize)
            .is_some_and(|set| set_contains(set, b))
    }

    /// Whether the pattern can ever match (Redis's nesting cap can rule it out).
    pub fn can_match(&self) -> bool {
        !self.never
    }

    /// Same answer as `stringmatch(pattern, string, false)`.
    pub fn is_match(&self, string: &[u8]) -> bool {
        if self.never {
            return false;
        }
        if string.is_empty() {
            return self.tokens.is_empty();
        }
        let n = string.len();
        let (first, rest) = match self.segments.split_first() {
            Some(split) => split,
            None => return false,
        };
        let Some((last, middle)) = rest.split_last() else {
            return first.len() == n && self.segment_at(first, string, 0);
        };
        if first.len() + last.len() > n
            || !self.segment_at(first, string, 0)
            || !self.segment_at(last, string, n - last.len())
        {
            return false;
        }
        let (mut pos, end) = (first.len(), n - last.len());
        for seg in middle {
            match self.find_segment(seg, string, pos, end) {
                Some(at) => pos = at + seg.len(),
                None => return false,
            }
        }
        true
    }

    /// Whether `seg` matches `string` at `at` (the caller guarantees it fits).
    fn segment_at(&self, seg: &Segment, string: &[u8], at: usize) -> bool {
        let tokens = &self.tokens[seg.start..seg.end];
        tokens
            .iter()
            .zip(&string[at..])
            .all(|(t, &b)| self.token_matches(*t, b))
    }

    /// The leftmost position in `pos..=end - seg.len()` where `seg` matches.
    fn find_segment(&self, seg: &Segment, string: &[u8], pos: usize, end: usize) -> Option<usize> {
        let last_start = end.checked_sub(seg.len()).filter(|&l| l >= pos)?;
        if let Some(lit) = &seg.literal {
            return memmem::find(&string[pos..end], lit).map(|i| pos + i);
        }
        if seg.len() < SHIFT_AND_MIN {
            return (pos..=last_start).find(|&at| self.segment_at(seg, string, at));
        }
        self.shift_and(seg, &string[pos..end]).map(|i| pos + i)
    }

    fn token_matches(&self, token: Token, b: u8) -> bool {
        match token {
            Token::Literal(l) => l == b,
            Token::Any | Token::Star => true,
            Token::Class(c) => self.class_contains(c, b),
        }
    }

    /// The leftmost start of `seg` in `hay`, by shift-and: bit `j` of the state says whether
    /// tokens `0..=j` match the bytes ending at the current one. A byte's mask is built the
    /// first time the byte is seen, so this is O(m·distinct bytes + n·m/64).
    fn shift_and(&self, seg: &Segment, hay: &[u8]) -> Option<usize> {
        let tokens = &self.tokens[seg.start..seg.end];
        let m = tokens.len();
        let words = m.div_ceil(64);
        let (top, top_bit) = ((m - 1) / 64, 1u64 << ((m - 1) % 64));
        let mut masks: Vec<u64> = Vec::new();
        let mut mask_of = [usize::MAX; 256];
        let mut state = vec![0u64; words];
        for (i, &b) in hay.iter().enumerate() {
            if mask_of[usize::from(b)] == usize::MAX {
                mask_of[usize::from(b)] = masks.len();
                for chunk in tokens.chunks(64) {
                    let bits = chunk.iter().enumerate();
                    let word =
                        bits.fold(0, |w, (j, t)| w | u64::from(self.token_matches(*t, b)) << j);
                    masks.push(word);
                }
            }
            let mask = &masks[mask_of[usize::from(b)]..][..words];
            let mut carry = 1;
            for (s, &mk) in state.iter_mut().zip(mask) {
                let out = *s >> 63;
                *s = (*s << 1 | carry) & mk;
                carry = out;
            }
            if state[top] & top_bit != 0 {
                return Some(i + 1 - m);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
