//! Text that bpfstorm did not choose (host names, kernel releases, CPU
//! models, error messages, anything read back from a CSV), made safe to
//! print: in markdown it can neither forge table cells, headings, links nor
//! HTML, and on a terminal it can send no control sequence.
//!
//! - [`text`]: markdown inline text (table cells, sentences, headings).
//! - [`code`]: a markdown code span, delimiters included.
//! - [`name`]: a value from a fixed set of names (backend, attach point,
//!   map kind, ...): printed as it is when it looks like one, as [`text`]
//!   otherwise.
//! - [`terminal`]: plain text for a terminal: control characters only.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters that reorder or hide text without being control characters:
/// bidirectional overrides and isolates, zero-width characters, line and
/// paragraph separators, the byte order mark.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// A control or invisible character, written visibly (`\n`, `\t`, `\x1b`,
/// `\u{202e}`); `None` for any other character.
fn visible(c: char) -> Option<String> {
    Some(match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        c if (c as u32) < 0x80 && c.is_control() => format!("\\x{:02x}", c as u32),
        c if c.is_control() || invisible(c) => format!("\\u{{{:x}}}", c as u32),
        _ => return None,
    })
}

/// Plain text for a terminal: control and invisible characters become
/// visible escapes (`\n`, `\x1b`, ...); everything else is kept.
pub fn terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match visible(c) {
            Some(v) => out.push_str(&v),
            None => out.push(c),
        }
    }
    out
}

/// Markdown inline text that renders as `s` (control characters shown as
/// escapes): `|`, `\`, `` ` ``, `*`, `_`, `#`, `[`, `]` and `~` are
/// backslash-escaped, `<`, `>` and `&` become entities.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for c in s.chars() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '#' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => match visible(c) {
                Some(v) => {
                    // A visible escape's backslash is text too.
                    out.push('\\');
                    out.push_str(&v);
                }
                None => out.push(c),
            },
        }
    }
    out
}

/// A markdown code span showing `s` (control characters as escapes): its
/// delimiters are one backtick more than the longest run of backticks in
/// it, and `|` is written `\|`, which a table cell needs (GitHub's tables
/// take it back to `|`, inside code spans too).
pub fn code(s: &str) -> String {
    let mut body = String::with_capacity(s.len());
    let (mut run, mut longest) = (0usize, 0usize);
    for c in s.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
        match c {
            '|' => body.push_str("\\|"),
            c => match visible(c) {
                Some(v) => body.push_str(&v),
                None => body.push(c),
            },
        }
    }
    let fence = "`".repeat(longest + 1);
    // One space each side keeps a leading or trailing backtick off the
    // fence; the renderer strips exactly one each side again.
    if body.is_empty() {
        // A code span of one space: markdown has no empty one.
        return "` `".into();
    }
    let pad = body.starts_with('`')
        || body.ends_with('`')
        || (body.starts_with(' ') && body.ends_with(' ') && body.trim() != "");
    let pad = if pad { " " } else { "" };
    let mut out = String::with_capacity(body.len() + 2 * (fence.len() + 1));
    let _ = write!(out, "{fence}{pad}{body}{pad}{fence}");
    out
}

/// A name such as `tp_sys_enter_execve`, `percpu_array` or
/// `syscalls:sys_enter_execve`: letters, digits, `.`, `:`, `+`, `-`, and `_`
/// between two letters or digits (where markdown never reads emphasis).
/// Printed as it is when it is one; anything else is escaped as [`text`].
pub fn name(s: &str) -> Cow<'_, str> {
    let chars: Vec<char> = s.chars().collect();
    let plain = chars.iter().enumerate().all(|(i, &c)| match c {
        'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | ':' | '+' | '-' => true,
        '_' => {
            let alnum = |j: Option<usize>| {
                j.and_then(|j| chars.get(j))
                    .is_some_and(char::is_ascii_alphanumeric)
            };
            alnum(i.checked_sub(1)) && alnum(Some(i + 1))
        }
        _ => false,
    });
    if plain {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(text(s))
    }
}

/// `s` cut to at most `max` characters, with `...` where it was cut.
pub fn shorten(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some((end, _)) => Cow::Owned(format!("{}...", &s[..end])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_text_from_literal_values() {
        assert_eq!(text("plain host-1.example"), "plain host-1.example");
        assert_eq!(text("a|b"), "a\\|b");
        assert_eq!(
            text("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(text("x\n## Heading"), "x\\\\n\\#\\# Heading");
        assert_eq!(text("a & b"), "a &amp; b");
        assert_eq!(text("back\\slash"), "back\\\\slash");
        assert_eq!(text("`code` *em* _em_"), "\\`code\\` \\*em\\* \\_em\\_");
        assert_eq!(text("[link](http://x)"), "\\[link\\](http://x)");
        assert_eq!(text("~~gone~~"), "\\~\\~gone\\~\\~");
        assert_eq!(text("\x1b[31mred"), "\\\\x1b\\[31mred");
        assert_eq!(text("tab\there\r"), "tab\\\\there\\\\r");
        assert_eq!(text("rtl\u{202e}"), "rtl\\\\u{202e}");
        assert_eq!(text("\u{85}"), "\\\\u{85}");
        assert_eq!(text("ünïcödé 6.1"), "ünïcödé 6.1");
    }

    #[test]
    fn code_spans_from_literal_values() {
        assert_eq!(
            code("6.12.95+deb12-cloud-amd64"),
            "`6.12.95+deb12-cloud-amd64`"
        );
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a``b`"), "``` a``b` ```");
        assert_eq!(code(""), "` `");
        assert_eq!(code(" x "), "`  x  `");
        assert_eq!(code("<script>"), "`<script>`");
        assert_eq!(code("line\nbreak"), "`line\\nbreak`");
        assert_eq!(code("\x07"), "`\\x07`");
    }

    #[test]
    fn names_pass_and_anything_else_is_escaped() {
        for plain in [
            "tp_sys_enter_execve",
            "perf_event_array",
            "syscalls:sys_enter_execve",
            "posix_spawn",
            "c",
            "libbpf",
            "6.1.0-50",
        ] {
            assert!(matches!(name(plain), Cow::Borrowed(_)), "{plain}");
        }
        assert_eq!(name("_em_"), "\\_em\\_");
        assert_eq!(name("a|b"), "a\\|b");
        assert_eq!(name("x y"), "x y");
        assert_eq!(name("<b>"), "&lt;b&gt;");
        assert_eq!(name(""), "");
    }

    #[test]
    fn terminal_text_from_literal_values() {
        assert_eq!(terminal("plain | <b> _x_"), "plain | <b> _x_");
        assert_eq!(terminal("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
        assert_eq!(terminal("two\nlines\r\n"), "two\\nlines\\r\\n");
        assert_eq!(terminal("del\x7f"), "del\\x7f");
        assert_eq!(terminal("csi\u{9b}"), "csi\\u{9b}");
        assert_eq!(terminal("\u{feff}bom"), "\\u{feff}bom");
    }

    #[test]
    fn shortening_counts_characters() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "abc...");
        assert_eq!(shorten("ééé", 2), "éé...");
    }
}
