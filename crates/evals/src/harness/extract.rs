//! Answer extraction for generation tasks: GSM8K (strict and flexible) and MATH (boxed answers,
//! normalised equivalence). The regular expressions of the reference are implemented as small
//! hand-written scanners (no regex dependency); each function names the pattern it implements.

/// What an extractor returns when nothing matches (lm-eval `fallback`).
pub const INVALID: &str = "[invalid]";

fn is_num_char(c: u8) -> bool {
    c.is_ascii_digit() || c == b'.' || c == b','
}

/// GSM8K `strict-match` (lm-eval `gsm8k.yaml`): the first match of `#### (\-?[0-9\.\,]+)`,
/// group 1, stripped; [`INVALID`] when none.
pub fn gsm8k_strict(text: &str) -> String {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find("#### ") {
        let start = from + pos + 5;
        for s in [start + usize::from(b.get(start) == Some(&b'-')), start] {
            let mut e = s;
            while e < b.len() && is_num_char(b[e]) {
                e += 1;
            }
            if e > s {
                return text[start..e].trim().to_string();
            }
        }
        from = from + pos + 1;
    }
    INVALID.to_string()
}

/// GSM8K `flexible-extract`: the **last** match of `(-?[$0-9.,]{2,})|(-?[0-9]+)`, its first
/// non-empty group, stripped; [`INVALID`] when none.
pub fn gsm8k_flexible(text: &str) -> String {
    let b = text.as_bytes();
    let cls = |c: u8| is_num_char(c) || c == b'$';
    let run = |s: usize, f: &dyn Fn(u8) -> bool| {
        let mut e = s;
        while e < b.len() && f(b[e]) {
            e += 1;
        }
        e
    };
    let mut last = None;
    let mut i = 0;
    while i < b.len() {
        let dash = usize::from(b[i] == b'-');
        // Alternative 1 (with the optional '-' first, then without), then alternative 2.
        let m = [(i + dash, 2usize), (i, 2)]
            .into_iter()
            .find_map(|(s, min)| {
                let e = run(s, &cls);
                (e - s >= min).then_some(e)
            })
            .or_else(|| {
                [(i + dash), i].into_iter().find_map(|s| {
                    let e = run(s, &|c: u8| c.is_ascii_digit());
                    (e > s).then_some(e)
                })
            });
        match m {
            Some(e) => {
                last = Some((i, e));
                i = e;
            }
            None => i += 1,
        }
    }
    last.map_or_else(
        || INVALID.to_string(),
        |(s, e)| text[s..e].trim().to_string(),
    )
}

/// GSM8K `exact_match` normalisation: `re.sub(r, "", ·)` for `r` in
/// `[",", "\$", "(?s).*#### ", "\.$"]` in this order, then lower-case (`ignore_case: true`).
pub fn gsm8k_normalize(s: &str) -> String {
    let mut t = s.replace([',', '$'], "");
    if let Some(p) = t.rfind("#### ") {
        t = t[p + 5..].to_string();
    }
    // `\.$`: a '.' at the end, or just before a final newline (Python's `$`).
    if t.ends_with('.') {
        t.pop();
    } else if t.ends_with(".\n") {
        t.remove(t.len() - 2);
    }
    t.to_lowercase()
}

/// GSM8K `exact_match` of an extracted answer against the full reference solution.
pub fn gsm8k_exact_match(extracted: &str, reference: &str) -> bool {
    gsm8k_normalize(extracted) == gsm8k_normalize(reference)
}

/// The last `\boxed{…}` (or `\fbox{…}`, or `\boxed …` up to `$`) of a solution, braces
/// balanced — Hendrycks MATH `last_boxed_only_string` as used by lm-eval
/// `hendrycks_math/utils.py`.
pub fn last_boxed_only_string(s: &str) -> Option<String> {
    if let Some(p) = s.rfind("\\boxed ") {
        let tail = &s[p + 7..];
        return Some(format!("\\boxed {}", tail.split('$').next().unwrap_or("")));
    }
    let idx = s.rfind("\\boxed").or_else(|| s.rfind("\\fbox"))?;
    let mut depth = 0i32;
    for (i, c) in s[idx..].char_indices() {
        if c == '{' {
            depth += 1;
        } else if c == '}' {
            depth -= 1;
            if depth == 0 {
                return Some(s[idx..idx + i + 1].to_string());
            }
        }
    }
    None
}

/// `remove_boxed`: the content of `\boxed{…}` or `\boxed …`; `None` for other shapes.
pub fn remove_boxed(s: &str) -> Option<String> {
    if let Some(r) = s.strip_prefix("\\boxed ") {
        return Some(r.to_string());
    }
    s.strip_prefix("\\boxed{")
        .and_then(|r| r.strip_suffix('}'))
        .map(str::to_string)
}

/// The boxed answer of a MATH solution (`remove_boxed(last_boxed_only_string(s))`).
pub fn math_boxed_answer(s: &str) -> Option<String> {
    last_boxed_only_string(s).and_then(|b| remove_boxed(&b))
}

/// The answer lm-eval's `hendrycks_math` reads from a generation (`utils.py`'s
/// `extract_answer`): the last boxed answer; else the first `\[ … \]` display (trimmed); else
/// the text between the first and the last `$`; else the whole text. `None` when a boxed answer
/// is malformed (`\fbox{…}`: the reference's `remove_boxed` fails its assertion there).
pub fn math_extract_answer(output: &str) -> Option<String> {
    if let Some(b) = last_boxed_only_string(output) {
        return remove_boxed(&b);
    }
    if let Some(start) = output.find("\\[") {
        // `\\\[(.+?)\\\]` with DOTALL: the shortest body of at least one character.
        let body = &output[start + 2..];
        if let Some(first) = body.chars().next() {
            let from = first.len_utf8();
            if let Some(end) = body[from..].find("\\]") {
                return Some(body[..from + end].trim().to_string());
            }
        }
    }
    let dollars: Vec<usize> = output.match_indices('$').map(|(i, _)| i).collect();
    if dollars.len() >= 2 {
        return Some(output[dollars[0] + 1..dollars[dollars.len() - 1]].to_string());
    }
    Some(output.to_string())
}

/// `None` where the reference's `fix_fracs` raises (`\frac` ending the string).
fn fix_fracs(s: &str) -> Option<String> {
    let mut parts = s.split("\\frac");
    let mut out = parts.next().unwrap_or("").to_string();
    for sub in parts {
        out.push_str("\\frac");
        let ch: Vec<char> = sub.chars().collect();
        match ch.first() {
            None => return None,
            Some('{') => out.push_str(sub),
            Some(_) if ch.len() < 2 => return Some(s.to_string()),
            Some(&a) => {
                let b = ch[1];
                let rest: String = ch[2..].iter().collect();
                if b != '{' {
                    out.push_str(&format!("{{{a}}}{{{b}}}{rest}"));
                } else {
                    out.push_str(&format!("{{{a}}}{b}{rest}"));
                }
            }
        }
    }
    Some(out)
}

/// Python's `int(x)` of a string: surrounding whitespace, an optional sign, ASCII digits with
/// single underscores between them; `None` where it raises `ValueError` (or past `i128`).
fn python_int(x: &str) -> Option<i128> {
    let t = x.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    let ok = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
    if !ok {
        return None;
    }
    t.replace('_', "").parse::<i128>().ok()
}

/// `None` where the reference's `fix_a_slash_b` raises: `int()` of a part that is not an
/// integer (only its assertion is caught there).
fn fix_a_slash_b(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() != 2 {
        return Some(s.to_string());
    }
    let (a, b) = (python_int(parts[0])?, python_int(parts[1])?);
    Some(if s == format!("{a}/{b}") {
        format!("\\frac{{{a}}}{{{b}}}")
    } else {
        s.to_string()
    })
}

/// `None` where the reference's `fix_sqrt` raises (`\sqrt` ending the string).
fn fix_sqrt(s: &str) -> Option<String> {
    let mut parts = s.split("\\sqrt");
    let mut out = parts.next().unwrap_or("").to_string();
    for sub in parts {
        let mut ch = sub.chars();
        match ch.next() {
            None => return None,
            Some(c) if c != '{' => out.push_str(&format!("\\sqrt{{{c}}}{}", ch.as_str())),
            _ => out.push_str(&format!("\\sqrt{sub}")),
        }
    }
    Some(out)
}

/// Hendrycks MATH `strip_string` (the normalisation behind `is_equiv`): drops `\left`,
/// `\right`, degrees, `\$`, units after `\text{ `, `\%`, spaces; fixes `\frac12`, `\sqrt3`,
/// `a/b`, a leading `.`, `0.5` → `\frac{1}{2}`, and a short `x =` prefix. `None` where the
/// reference raises (two `\text{ ` units, `\sqrt` or `\frac` ending the string, an `a/b` whose
/// parts are not integers): [`math_is_equiv`] then compares the raw strings, as the reference's
/// `except Exception` does.
pub fn math_strip_string(s: &str) -> Option<String> {
    let mut s = s.replace('\n', "").replace("\\!", "").replace("\\\\", "\\");
    for (a, b) in [
        ("tfrac", "frac"),
        ("dfrac", "frac"),
        ("\\left", ""),
        ("\\right", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\$", ""),
    ] {
        s = s.replace(a, b);
    }
    // remove_right_units: "\text{ " splits off the units (the reference asserts one split).
    if let Some((left, right)) = s.split_once("\\text{ ") {
        if right.contains("\\text{ ") {
            return None;
        }
        s = left.to_string();
    }
    s = s
        .replace("\\%", "")
        .replace(" .", " 0.")
        .replace("{.", "{0.");
    if s.is_empty() {
        return Some(s);
    }
    if s.starts_with('.') {
        s = format!("0{s}");
    }
    let eq: Vec<&str> = s.split('=').collect();
    if eq.len() == 2 && eq[0].chars().count() <= 2 {
        s = eq[1].to_string();
    }
    s = fix_sqrt(&s)?.replace(' ', "");
    s = fix_fracs(&s)?;
    if s == "0.5" {
        s = "\\frac{1}{2}".into();
    }
    fix_a_slash_b(&s)
}

/// Hendrycks MATH `is_equiv`: equality after [`math_strip_string`], or of the raw strings when
/// either normalisation fails (the reference's `except Exception: return str1 == str2`).
pub fn math_is_equiv(a: &str, b: &str) -> bool {
    match (math_strip_string(a), math_strip_string(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The first word of a generation: leading whitespace skipped, cut at the next whitespace,
/// surrounding punctuation and quotes (ASCII and typographic) removed — the exact-match unit of
/// `lambada_gen` (a passage's last word against the model's next word).
pub fn first_word(text: &str) -> String {
    let word = text.split_whitespace().next().unwrap_or("");
    word.trim_matches(|c: char| c.is_ascii_punctuation() || "“”‘’«»…".contains(c))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm8k_extractors() {
        assert_eq!(gsm8k_strict("so\n#### 1,234.\n"), "1,234.");
        assert_eq!(gsm8k_strict("#### -5 and #### 6"), "-5");
        assert_eq!(gsm8k_strict("#### x #### 7"), "7");
        assert_eq!(gsm8k_strict("no answer"), INVALID);
        assert_eq!(gsm8k_flexible("3 apples cost $12.50, total -7"), "-7");
        assert_eq!(gsm8k_flexible("a 5 b"), "5");
        assert_eq!(gsm8k_flexible("costs $4."), "$4.");
        assert_eq!(gsm8k_flexible("none"), INVALID);
        assert!(gsm8k_exact_match("$1,234.", "blah\n#### 1234"));
        assert!(!gsm8k_exact_match(INVALID, "#### 3"));
    }

    #[test]
    fn math_boxed_and_equivalence() {
        let sol = "so $\\boxed{\\frac{1}{2}}$ and \\boxed{\\dfrac{3}{4}}.";
        assert_eq!(math_boxed_answer(sol).as_deref(), Some("\\dfrac{3}{4}"));
        assert!(math_is_equiv("\\dfrac34", "\\frac{3}{4}"));
        assert!(math_is_equiv("0.5", "1/2"));
        assert!(math_is_equiv("x = 5", "5"));
        assert!(math_is_equiv(
            "\\left( 3, \\frac{\\pi}{2} \\right)",
            "(3,\\frac{\\pi}{2})"
        ));
        assert!(!math_is_equiv("5", "6"));
        assert_eq!(math_boxed_answer("no box"), None);
    }

    #[test]
    fn math_equivalence_falls_back_to_raw_strings_where_the_reference_raises() {
        // `int("\sqrt{2}")` raises in `fix_a_slash_b`: the raw strings are compared.
        assert!(!math_is_equiv("\\sqrt2/2", "\\sqrt{2}/2"));
        assert!(math_is_equiv("\\sqrt2/2", "\\sqrt2/2"));
        // Two units, a trailing `\sqrt` or `\frac`.
        assert!(!math_is_equiv("5\\text{ cm}\\text{ m}", "5"));
        assert!(math_is_equiv("x\\sqrt", "x\\sqrt"));
        assert!(!math_is_equiv("x\\sqrt", "x \\sqrt"));
        assert!(!math_is_equiv("\\frac", "\\frac "));
        // Python's int(): the assertion keeps "+3/4" as it is; "1_0/4" is not "10/4".
        assert_eq!(math_strip_string("3/4").as_deref(), Some("\\frac{3}{4}"));
        assert_eq!(math_strip_string("+3/4").as_deref(), Some("+3/4"));
        assert_eq!(math_strip_string("1_0/4").as_deref(), Some("1_0/4"));
        assert_eq!(math_strip_string("3/x"), None);
    }

    #[test]
    fn math_answers_are_extracted_as_hendrycks_math_does() {
        assert_eq!(
            math_extract_answer("so $x=\\boxed{4}$.").as_deref(),
            Some("4")
        );
        assert_eq!(
            math_extract_answer("so \\[ 42 \\] and \\[7\\]").as_deref(),
            Some("42")
        );
        assert_eq!(
            math_extract_answer("$x$ and $y$").as_deref(),
            Some("x$ and $y")
        );
        assert_eq!(math_extract_answer("just 5").as_deref(), Some("just 5"));
        assert_eq!(math_extract_answer("\\fbox{3}"), None);
    }

    #[test]
    fn first_word_cuts_at_whitespace_and_strips_punctuation() {
        assert_eq!(first_word(" Paris. It is"), "Paris");
        assert_eq!(first_word("\n  \"dog,\" she said"), "dog");
        assert_eq!(first_word("don't stop"), "don't");
        assert_eq!(first_word("“Maybe”"), "Maybe");
        assert_eq!(first_word("   "), "");
    }
}
