use super::*;
use proptest::prelude::*;

/// (pattern, string, expected) for case-sensitive matching: derived from util.c, and what
/// redis-server answers to `KEYS`.
const CASES: &[(&[u8], &[u8], bool)] = &[
    // empty pattern and empty string
    (b"", b"", true),
    (b"", b"a", false),
    (b"*", b"", false),
    (b"?", b"", false),
    (b"**", b"", false),
    (b"[^a]", b"", false),
    // literals
    (b"hello", b"hello", true),
    (b"hello", b"hell", false),
    (b"hello", b"helloo", false),
    (b"hello", b"Hello", false),
    // *
    (b"*", b"anything", true),
    (b"*", b"\x00", true),
    (b"h*o", b"ho", true),
    (b"h*o", b"hello", true),
    (b"h*o", b"hellx", false),
    (b"*o", b"o", true),
    (b"a*", b"a", true),
    (b"a***", b"a", true),
    (b"a*?", b"a", false),
    (b"a*?", b"ab", true),
    (b"***a", b"bba", true),
    (b"*a*b*", b"xaxbx", true),
    (b"*a*b*", b"xbxax", false),
    (b"news.*", b"news.", true),
    (b"news.*", b"news", false),
    // ?
    (b"h?llo", b"hello", true),
    (b"h?llo", b"hllo", false),
    (b"h?llo", b"h\xffllo", true),
    (b"???", b"ab", false),
    // classes
    (b"h[ae]llo", b"hallo", true),
    (b"h[ae]llo", b"hillo", false),
    (b"h[^e]llo", b"hallo", true),
    (b"h[^e]llo", b"hello", false),
    (b"h[a-b]llo", b"hbllo", true),
    (b"h[a-b]llo", b"hcllo", false),
    (b"[z-a]", b"m", true),
    (b"[z-a]", b"A", false),
    (b"[^z-a]", b"m", false),
    (b"[]", b"]", false),
    (b"[]]", b"]", false),
    (b"[]]", b"]]", false),
    (b"[\\]]", b"]", true),
    (b"[a\\-z]", b"-", true),
    (b"[a\\-z]", b"b", false),
    (b"[\\^]", b"^", true),
    (b"[^]", b"x", true),
    (b"[^]", b"]", true),
    (b"[-a]", b"-", true),
    (b"[a-]", b"^", true),
    (b"[a-]", b"b", false),
    (b"[a-]", b"a", true),
    (b"[a-]x", b"x", true),
    (b"[a-]x", b"ax", false),
    (b"[a-]x", b"a", true),
    (b"[a-", b"-", true),
    (b"[a-", b"a", true),
    (b"[a-", b"b", false),
    (b"[a-b", b"b", true),
    (b"[abc", b"c", true),
    (b"[abc", b"d", false),
    (b"[abc", b"cd", false),
    (b"[", b"[", false),
    (b"[", b"a", false),
    (b"[^", b"a", true),
    (b"[^", b"ab", false),
    (b"a[", b"a[", false),
    (b"[\\", b"\\", true),
    (b"[\\", b"a", false),
    (b"[*]", b"*", true),
    (b"[*]", b"a", false),
    (b"[?]", b"a", false),
    // escapes
    (b"\\*", b"*", true),
    (b"\\*", b"a", false),
    (b"\\?", b"?", true),
    (b"\\?", b"a", false),
    (b"\\[a]", b"[a]", true),
    (b"\\a", b"a", true),
    (b"\\\\", b"\\", true),
    (b"\\", b"\\", true),
    (b"a\\", b"a\\", true),
    (b"a\\", b"a", false),
    (b"*\\", b"xx\\", true),
    // raw bytes, including NUL and bytes that are not UTF-8
    (b"\x00", b"\x00", true),
    (b"a\x00*", b"a\x00b", true),
    (b"\xff*", b"\xff\xfe", true),
    (b"[\x80-\xff]", b"\x80", true),
    (b"[\x80-\xff]", b"\x7f", false),
    // signed `char` in ranges: `\xff` is -1, so `[a-\xff]` is -1..=97
    (b"[a-\xff]", b"\xff", true),
    (b"[a-\xff]", b"\x00", true),
    (b"[a-\xff]", b"a", true),
    (b"[a-\xff]", b"b", false),
    (b"[a-\xff]", b"\x80", false),
    (b"[\x00-\xff]", b"\xfe", false),
    (b"[\x80-\x00]", b"\x90", true),
];

#[test]
fn table_matches_redis() {
    for &(pattern, string, expected) in CASES {
        let got = stringmatch(pattern, string, false);
        assert_eq!(
            got,
            expected,
            "stringmatch({:?}, {:?})",
            pattern.escape_ascii().to_string(),
            string.escape_ascii().to_string()
        );
        let compiled = Compiled::new(pattern).is_match(string);
        assert_eq!(
            compiled,
            expected,
            "Compiled({:?})",
            pattern.escape_ascii().to_string()
        );
    }
}

#[test]
fn nocase_folds_ascii_only_and_not_escapes_in_classes() {
    assert!(stringmatch(b"HeLLo", b"hello", true));
    assert!(stringmatch(b"h[A-C]llo", b"hbllo", true));
    assert!(stringmatch(b"h[b]llo", b"hBllo", true));
    assert!(!stringmatch(b"h[\\b]llo", b"hBllo", true));
    assert!(stringmatch(b"\\H", b"h", true));
    assert!(!stringmatch(b"\xc9", b"\xe9", true));
    // Folding happens after the signed swap: [Z-a] is 90..=97, folded to 122..=97: empty.
    assert!(!stringmatch(b"[Z-a]", b"_", true));
    assert!(stringmatch(b"[Z-a]", b"_", false));
}

#[test]
fn pathological_patterns_finish() {
    let pattern = b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
    let string = vec![b'a'; 10_000];
    assert!(!stringmatch(pattern, &string, false));
    assert!(!Compiled::new(pattern).is_match(&string));
    let mut long = b"*a".repeat(500);
    long.push(b'b');
    assert!(!stringmatch(&long, &string, false));
    assert!(!Compiled::new(&long).is_match(&string));
}

#[test]
fn nesting_cap_rejects_patterns_that_need_more_than_1000_stars() {
    // The regression test Redis added with CVE-2024-31228.
    let string = vec![b'a'; 50_000];
    let pattern = b"*?".repeat(50_000);
    assert!(!stringmatch(&pattern, &string, false));
    assert!(!Compiled::new(&pattern).is_match(&string));
    let string = vec![b'a'; 2000];
    for (stars, trailing, expected) in [
        (1000, false, true),
        (1001, false, false),
        (1000, true, true),
        (1001, true, true),
        (1002, true, false),
    ] {
        let mut pattern = b"*a".repeat(stars);
        if trailing {
            pattern.truncate(pattern.len() - 1);
        }
        let what = format!("{stars} stars, trailing {trailing}");
        assert_eq!(stringmatch(&pattern, &string, false), expected, "{what}");
        assert_eq!(
            Compiled::new(&pattern).is_match(&string),
            expected,
            "{what}"
        );
    }
}

#[test]
fn tokens_follow_the_c_walk() {
    use Token::*;
    let c = Compiled::new(b"a\\*b**?[x-z]\\");
    assert_eq!(
        c.tokens(),
        &[
            Literal(b'a'),
            Literal(b'*'),
            Literal(b'b'),
            Star,
            Any,
            Class(0),
            Literal(b'\\')
        ]
    );
    assert!(c.class_contains(0, b'y') && !c.class_contains(0, b'a'));
    // `[a-]x` is one class that swallows the rest of the pattern.
    assert_eq!(Compiled::new(b"[a-]x").tokens(), &[Class(0)]);
}

#[test]
fn class_sets_agree_with_stringmatch() {
    let classes: &[&[u8]] = &[
        b"[abc]",
        b"[^abc]",
        b"[a-z]",
        b"[z-a]",
        b"[\\]]",
        b"[a-",
        b"[a-]x",
        b"[^",
        b"[",
        b"[\\",
        b"[a-\xff]",
        b"[\x80-\x00]",
        b"[]",
        b"[^]",
        b"[\\a-z]",
        b"[a\\-z]",
        b"[-]",
    ];
    for class in classes {
        let c = Compiled::new(class);
        for b in 0..=u8::MAX {
            let expected = stringmatch(class, &[b], false);
            let got = match c.tokens() {
                [Token::Class(i)] => c.class_contains(*i, b),
                _ => false,
            };
            assert_eq!(
                got,
                expected,
                "{:?} on {b:#x}",
                class.escape_ascii().to_string()
            );
        }
    }
}

fn bytes_from(
    alphabet: &'static [u8],
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop::sample::select(alphabet), len)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn compiled_agrees_with_stringmatch(
        pattern in bytes_from(b"ab*?[]^-\\\xff\x80\x00", 0..14),
        string in bytes_from(b"ab-]^\\*[?\xff\x80\x00", 0..10),
    ) {
        prop_assert_eq!(Compiled::new(&pattern).is_match(&string), stringmatch(&pattern, &string, false));
    }

    #[test]
    fn compiled_agrees_on_long_wildcard_segments(
        middle in bytes_from(b"aab??", 6..90),
        prefix in bytes_from(b"a*", 0..3),
        suffix in bytes_from(b"b*", 0..3),
        string in bytes_from(b"aaab", 0..200),
    ) {
        let middle = middle.iter().map(|&b| match b {
            b'b' => &b"[ab]"[..],
            b'?' => &b"?"[..],
            _ => &b"a"[..],
        });
        let pattern = [&prefix[..], b"*"].into_iter().chain(middle).chain([&b"*"[..], &suffix]).collect::<Vec<_>>().concat();
        prop_assert_eq!(Compiled::new(&pattern).is_match(&string), stringmatch(&pattern, &string, false));
    }

    #[test]
    fn compiled_agrees_on_star_heavy_patterns(
        pattern in bytes_from(b"aab**?", 0..24),
        string in bytes_from(b"aab", 0..24),
    ) {
        prop_assert_eq!(Compiled::new(&pattern).is_match(&string), stringmatch(&pattern, &string, false));
    }
}
