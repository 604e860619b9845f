//! SOQL tokens, with the string-literal escapes of Salesforce's "Quoted String Escape
//! Sequences" page: `\n` `\N` (new line), `\r` `\R`, `\t` `\T`, `\b` `\B` (bell), `\f` `\F`,
//! `\"`, `\'`, `\\`, `\uXXXX`, and in LIKE patterns only `\_` and `\%` (a literal `_` or
//! `%`). Any other backslash is an error, as Salesforce says. FACTS does not list these; the
//! page is the SOQL and SOSL Reference's `sforce_api_calls_soql_select_quotedstringescapes`.

/// A position in the query: row and column, from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) row: usize,
    pub(crate) col: usize,
}

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// A name or keyword (may contain dots: `Account.Name`).
    Word(String),
    /// A quoted string, decoded; `wild` marks the characters that were `\_` or `\%` (literal
    /// in a LIKE pattern).
    Str {
        text: String,
        wild: Vec<usize>,
    },
    /// A number as written.
    Num(String),
    /// A date or datetime literal as written (`2024-01-31`, `2024-01-31T10:00:00Z`).
    Date(String),
    /// Punctuation: `(` `)` `,` `*` `=` `!=` `<>` `<` `<=` `>` `>=` `:`.
    Punct(&'static str),
    Eof,
}

impl Tok {
    /// How an error shows the token.
    pub(crate) fn shown(&self) -> String {
        match self {
            Tok::Word(w) => w.clone(),
            Tok::Str { text, .. } => format!("'{text}'"),
            Tok::Num(n) | Tok::Date(n) => n.clone(),
            Tok::Punct(p) => (*p).to_owned(),
            Tok::Eof => "<EOF>".to_owned(),
        }
    }

    /// Whether this is the keyword `kw` (ignoring case).
    pub(crate) fn is(&self, kw: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

/// A lexing error: where, and what to say.
#[derive(Debug)]
pub(crate) struct LexError {
    pub(crate) pos: Pos,
    pub(crate) message: String,
}

const PUNCT: [&str; 12] = [
    "!=", "<>", "<=", ">=", "(", ")", ",", "*", "=", "<", ">", ":",
];

/// Splits a query into tokens with their positions (the last is `Eof`).
pub(crate) fn tokens(query: &str) -> Result<Vec<(Tok, Pos)>, LexError> {
    let chars: Vec<char> = query.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut row, mut col) = (0, 1, 1);
    let advance = |i: &mut usize, row: &mut usize, col: &mut usize, c: char| {
        *i += 1;
        if c == '\n' {
            *row += 1;
            *col = 1;
        } else {
            *col += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { row, col };
        if c.is_whitespace() {
            advance(&mut i, &mut row, &mut col, c);
            continue;
        }
        if c == '\'' {
            advance(&mut i, &mut row, &mut col, c);
            let mut text = String::new();
            let mut wild = Vec::new();
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err(LexError {
                        pos,
                        message: "unterminated string literal".into(),
                    });
                };
                advance(&mut i, &mut row, &mut col, c);
                match c {
                    '\'' => break,
                    '\\' => {
                        let Some(&e) = chars.get(i) else {
                            return Err(LexError {
                                pos,
                                message: "unterminated string literal".into(),
                            });
                        };
                        advance(&mut i, &mut row, &mut col, e);
                        let decoded = match e {
                            'n' | 'N' => '\n',
                            'r' | 'R' => '\r',
                            't' | 'T' => '\t',
                            'b' | 'B' => '\u{7}',
                            'f' | 'F' => '\u{c}',
                            '"' => '"',
                            '\'' => '\'',
                            '\\' => '\\',
                            '_' | '%' => {
                                wild.push(text.chars().count());
                                e
                            }
                            'u' => {
                                let hex: String = chars.iter().skip(i).take(4).collect();
                                let code = (hex.len() == 4)
                                    .then(|| u32::from_str_radix(&hex, 16).ok())
                                    .flatten()
                                    .and_then(char::from_u32);
                                let Some(code) = code else {
                                    return Err(LexError {
                                        pos,
                                        message: format!(
                                            "Invalid string literal '\\u{hex}'. Illegal unicode escape sequence"
                                        ),
                                    });
                                };
                                for h in hex.chars() {
                                    advance(&mut i, &mut row, &mut col, h);
                                }
                                code
                            }
                            other => {
                                return Err(LexError {
                                    pos,
                                    message: format!(
                                        "Invalid string literal '\\{other}'. Illegal character sequence \\{other}' in string literal."
                                    ),
                                });
                            }
                        };
                        text.push(decoded);
                    }
                    other => text.push(other),
                }
            }
            out.push((Tok::Str { text, wild }, pos));
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            advance(&mut i, &mut row, &mut col, c);
            let mut date = false;
            while let Some(&d) = chars.get(i) {
                let more = d.is_ascii_digit()
                    || d == '.'
                    || (d == '-' && i - start == 4)
                    || (date && matches!(d, '-' | 'T' | ':' | 'Z' | '+'));
                if !more {
                    break;
                }
                if d == '-' {
                    date = true;
                }
                advance(&mut i, &mut row, &mut col, d);
            }
            let text: String = chars[start..i].iter().collect();
            out.push((
                if date {
                    Tok::Date(text)
                } else {
                    Tok::Num(text)
                },
                pos,
            ));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while let Some(&d) = chars.get(i) {
                if !(d.is_alphanumeric() || d == '_' || d == '.') {
                    break;
                }
                advance(&mut i, &mut row, &mut col, d);
            }
            out.push((Tok::Word(chars[start..i].iter().collect()), pos));
            continue;
        }
        let rest: String = chars.iter().skip(i).take(2).collect();
        let Some(p) = PUNCT.iter().find(|p| rest.starts_with(**p)) else {
            return Err(LexError {
                pos,
                message: format!("unexpected token: '{c}'"),
            });
        };
        for ch in p.chars() {
            advance(&mut i, &mut row, &mut col, ch);
        }
        out.push((Tok::Punct(p), pos));
    }
    out.push((Tok::Eof, Pos { row, col }));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(query: &str) -> Vec<String> {
        tokens(query)
            .map(|t| {
                t.into_iter()
                    .filter_map(|(tok, _)| match tok {
                        Tok::Str { text, .. } => Some(text),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn escapes_decode_as_the_soql_reference_says() {
        assert_eq!(strings(r"WHERE x = 'O\'Brien'"), ["O'Brien"]);
        assert_eq!(
            strings(r#"'a\\b' 'c\nd' 'e\Tf' '\u00e9' '\"q\"'"#),
            ["a\\b", "c\nd", "e\tf", "é", "\"q\""]
        );
        assert!(tokens(r"'bad \q'").is_err());
        assert!(tokens("'open").is_err());
        assert!(tokens(r"'\u12'").is_err());
    }

    #[test]
    fn like_escapes_are_marked() {
        let toks = tokens(r"'50\%\_x'").unwrap_or_default();
        assert_eq!(
            toks[0].0,
            Tok::Str {
                text: "50%_x".into(),
                wild: vec![2, 3]
            }
        );
    }

    #[test]
    fn dates_numbers_and_positions() {
        let toks =
            tokens("SELECT Id\nFROM Contact WHERE CreatedDate > 2024-01-31T10:00:00Z AND N < -1.5")
                .unwrap_or_default();
        assert!(
            toks.iter()
                .any(|(t, _)| *t == Tok::Date("2024-01-31T10:00:00Z".into()))
        );
        assert!(toks.iter().any(|(t, _)| *t == Tok::Num("-1.5".into())));
        assert_eq!(toks[2].1, Pos { row: 2, col: 1 });
    }
}
