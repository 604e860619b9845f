//! The SOQL a connector sends, parsed: `SELECT f1, f2 | COUNT() FROM Object [WHERE …]
//! [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]`, where a condition is
//! `AND` / `OR` / `NOT` / parentheses over `field op value` (`=`, `!=`, `<>`, `<`, `<=`,
//! `>`, `>=`), `field [NOT] IN (v, …)` and `field LIKE 'pattern'`. Keywords ignore case.
//! Anything else is `MALFORMED_QUERY` at the token where it stops.

use super::lexer::{LexError, Pos, Tok, tokens};

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lit {
    Str(String),
    Num(String),
    Date(String),
    Bool(bool),
    Null,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A field name where it was written.
pub(crate) type Name = (String, Pos);

/// A WHERE condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp {
        field: Name,
        op: Op,
        value: (Lit, Pos),
    },
    In {
        field: Name,
        negated: bool,
        values: Vec<(Lit, Pos)>,
    },
    Like {
        field: Name,
        pattern: String,
        wild: Vec<usize>,
    },
}

/// An ORDER BY item.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Order {
    pub(crate) field: Name,
    pub(crate) descending: bool,
    pub(crate) nulls_last: bool,
}

/// The select list.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Select {
    Count,
    Fields(Vec<Name>),
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Query {
    pub(crate) select: Select,
    pub(crate) object: Name,
    pub(crate) filter: Option<Cond>,
    pub(crate) order: Vec<Order>,
    pub(crate) limit: Option<usize>,
    pub(crate) offset: Option<usize>,
}

/// Where parsing stopped and why (`unexpected token: …`).
pub(crate) type ParseError = LexError;

const RESERVED: [&str; 14] = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "LIMIT", "OFFSET",
    "NULLS", "NULL",
];

struct Parser {
    toks: Vec<(Tok, Pos)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.at).map_or(&Tok::Eof, |(t, _)| t)
    }

    fn pos(&self) -> Pos {
        self.toks
            .get(self.at)
            .or(self.toks.last())
            .map_or(Pos { row: 1, col: 1 }, |(_, p)| *p)
    }

    fn next(&mut self) -> (Tok, Pos) {
        let item = self
            .toks
            .get(self.at)
            .cloned()
            .unwrap_or((Tok::Eof, self.pos()));
        self.at += 1;
        item
    }

    fn unexpected(&self) -> ParseError {
        ParseError {
            pos: self.pos(),
            message: format!("unexpected token: {}", self.peek().shown()),
        }
    }

    fn keyword(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.peek().is(kw) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn accept(&mut self, kw: &str) -> bool {
        let hit = self.peek().is(kw);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn punct(&mut self, p: &str) -> Result<(), ParseError> {
        if *self.peek()
            == Tok::Punct(match p {
                "(" => "(",
                ")" => ")",
                _ => ",",
            })
        {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn name(&mut self) -> Result<Name, ParseError> {
        match self.peek().clone() {
            Tok::Word(w) if !RESERVED.iter().any(|r| w.eq_ignore_ascii_case(r)) => {
                let pos = self.pos();
                self.at += 1;
                Ok((w, pos))
            }
            _ => Err(self.unexpected()),
        }
    }

    fn number(&mut self) -> Result<usize, ParseError> {
        match self.peek().clone() {
            Tok::Num(n) => {
                let value = n.parse().map_err(|_| self.unexpected())?;
                self.at += 1;
                Ok(value)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn literal(&mut self) -> Result<(Lit, Pos), ParseError> {
        let pos = self.pos();
        let lit = match self.peek().clone() {
            Tok::Str { text, wild } if wild.is_empty() => Lit::Str(text),
            Tok::Num(n) => Lit::Num(n),
            Tok::Date(d) => Lit::Date(d),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Lit::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Lit::Bool(false),
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => Lit::Null,
            _ => return Err(self.unexpected()),
        };
        self.at += 1;
        Ok((lit, pos))
    }

    fn query(&mut self) -> Result<Query, ParseError> {
        self.keyword("SELECT")?;
        let select = if self.peek().is("COUNT") {
            self.at += 1;
            self.punct("(")?;
            self.punct(")")?;
            Select::Count
        } else {
            let mut fields = vec![self.name()?];
            while *self.peek() == Tok::Punct(",") {
                self.at += 1;
                fields.push(self.name()?);
            }
            Select::Fields(fields)
        };
        self.keyword("FROM")?;
        let object = self.name()?;
        let filter = if self.accept("WHERE") {
            Some(self.or()?)
        } else {
            None
        };
        let mut order = Vec::new();
        if self.accept("ORDER") {
            self.keyword("BY")?;
            loop {
                let field = self.name()?;
                let descending = if self.accept("DESC") {
                    true
                } else {
                    self.accept("ASC");
                    false
                };
                let nulls_last = if self.accept("NULLS") {
                    if self.accept("LAST") {
                        true
                    } else {
                        self.keyword("FIRST")?;
                        false
                    }
                } else {
                    descending
                };
                order.push(Order {
                    field,
                    descending,
                    nulls_last,
                });
                if *self.peek() != Tok::Punct(",") {
                    break;
                }
                self.at += 1;
            }
        }
        let limit = if self.accept("LIMIT") {
            Some(self.number()?)
        } else {
            None
        };
        let offset = if self.accept("OFFSET") {
            Some(self.number()?)
        } else {
            None
        };
        if *self.peek() != Tok::Eof {
            return Err(self.unexpected());
        }
        Ok(Query {
            select,
            object,
            filter,
            order,
            limit,
            offset,
        })
    }

    fn or(&mut self) -> Result<Cond, ParseError> {
        let mut items = vec![self.and()?];
        while self.accept("OR") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, ParseError> {
        let mut items = vec![self.unary()?];
        while self.accept("AND") {
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::And(items)
        })
    }

    fn unary(&mut self) -> Result<Cond, ParseError> {
        if self.accept("NOT") {
            return Ok(Cond::Not(Box::new(self.unary()?)));
        }
        if *self.peek() == Tok::Punct("(") {
            self.at += 1;
            let inner = self.or()?;
            self.punct(")")?;
            return Ok(inner);
        }
        let field = self.name()?;
        if self.accept("NOT") {
            self.keyword("IN")?;
            return Ok(Cond::In {
                field,
                negated: true,
                values: self.list()?,
            });
        }
        if self.accept("IN") {
            return Ok(Cond::In {
                field,
                negated: false,
                values: self.list()?,
            });
        }
        if self.accept("LIKE") {
            return match self.next() {
                (Tok::Str { text, wild }, _) => Ok(Cond::Like {
                    field,
                    pattern: text,
                    wild,
                }),
                _ => {
                    self.at -= 1;
                    Err(self.unexpected())
                }
            };
        }
        let op = match self.peek() {
            Tok::Punct("=") => Op::Eq,
            Tok::Punct("!=" | "<>") => Op::Ne,
            Tok::Punct("<") => Op::Lt,
            Tok::Punct("<=") => Op::Le,
            Tok::Punct(">") => Op::Gt,
            Tok::Punct(">=") => Op::Ge,
            _ => return Err(self.unexpected()),
        };
        self.at += 1;
        Ok(Cond::Cmp {
            field,
            op,
            value: self.literal()?,
        })
    }

    fn list(&mut self) -> Result<Vec<(Lit, Pos)>, ParseError> {
        self.punct("(")?;
        let mut values = vec![self.literal()?];
        while *self.peek() == Tok::Punct(",") {
            self.at += 1;
            values.push(self.literal()?);
        }
        self.punct(")")?;
        Ok(values)
    }
}

/// Parses a query.
pub(crate) fn parse(query: &str) -> Result<Query, ParseError> {
    let toks = tokens(query)?;
    Parser { toks, at: 0 }.query()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_a_connector_sends_parse() {
        let q = parse("select Id, Email from Contact where Email IN ('a@x.com','O\\'Brien@x.com') and (Name = 'x' or not Title != null) order by LastModifiedDate desc limit 10")
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(q.object.0, "Contact");
        assert_eq!(q.limit, Some(10));
        assert!(q.order[0].descending);
        let Some(Cond::And(parts)) = &q.filter else {
            panic!("an AND")
        };
        let Cond::In { values, .. } = &parts[0] else {
            panic!("an IN")
        };
        assert_eq!(values[1].0, Lit::Str("O'Brien@x.com".into()));
        assert_eq!(
            parse("SELECT COUNT() FROM Lead").map(|q| q.select).ok(),
            Some(Select::Count)
        );
    }

    #[test]
    fn errors_say_where_they_stop() {
        let error = parse("SELECT Id FROM Contact WHERE").err();
        let error = error.unwrap_or_else(|| panic!("an error"));
        assert_eq!(error.message, "unexpected token: <EOF>");
        assert_eq!((error.pos.row, error.pos.col), (1, 29));
        assert!(parse("SELECT FROM Contact").is_err());
        assert!(parse("SELECT Id FROM Contact LIMIT x").is_err());
        assert!(parse("SELECT Id FROM Contact WHERE Name = 'a' extra").is_err());
    }
}
