//! A small SQL lexer: as far as psql cares, where statements end, and whether text ends inside a
//! quote, comment or dollar-quoted body. pgk8s uses it to refuse scripts that would swallow the
//! rest of a session (an unterminated quote), to add a missing final `;`, and to find
//! statements that would end the transaction pgk8s runs a migration or seed in, or take over
//! the psql session it runs in (a meta-command, `COPY … FROM STDIN`).
//!
//! It can be fed a line at a time, so a seed file is checked without being held in memory.

/// Lexer states of SQL text, as far as psql cares where a statement ends.
#[derive(Clone, PartialEq)]
enum Lexed {
    Code,
    LineComment,
    BlockComment(u32),
    Quoted { escapes: bool },
    Identifier,
    Dollar(String),
}

/// A walk over SQL text that can be fed in pieces (a line at a time, for files too large to
/// hold): where it is (quote, comment, ...), whether the last code token was `;`, the first
/// words of every top-level statement, and the first thing that would take over psql's session.
pub struct Lexer {
    state: Lexed,
    terminated: bool,
    at_statement_start: bool,
    heads: Vec<String>,
    /// The line being walked (1-based).
    line: usize,
    /// Inside a top-level `COPY` statement: the last word of code seen in it.
    copy_word: Option<String>,
    takeover: Option<SessionTakeover>,
}

/// Text psql would not send to the server as SQL: it would act on the session pgk8s speaks
/// through psql, so the rest of a migration, and pgk8s's own bookkeeping, would be read as
/// something else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionTakeover {
    /// A psql backslash command (`\set`, `\i`, `\copy`, ...): its name, without the backslash.
    MetaCommand {
        /// The command's name, e.g. `set`.
        command: String,
        /// The line it is on (1-based).
        line: usize,
    },
    /// `COPY … FROM STDIN`: psql would read the rest of the session as the rows.
    CopyFromStdin {
        /// The line `STDIN` is on (1-based).
        line: usize,
    },
}

impl Default for Lexer {
    fn default() -> Lexer {
        Lexer {
            state: Lexed::Code,
            terminated: true,
            at_statement_start: true,
            heads: Vec::new(),
            line: 1,
            copy_word: None,
            takeover: None,
        }
    }
}

impl Lexer {
    /// A lexer that has walked all of `text`.
    pub fn of(text: &str) -> Lexer {
        let mut lexer = Lexer::default();
        lexer.feed(text);
        lexer
    }

    /// Walks the next piece of text. A piece must not end inside a token pair (`--`, `/*`,
    /// `$tag$`): whole lines are always safe.
    pub fn feed(&mut self, text: &str) {
        let chars: Vec<char> = text.chars().collect();
        let Lexer {
            state,
            terminated,
            at_statement_start,
            heads,
            line,
            copy_word,
            takeover,
        } = self;
        let mut index = 0;
        while index < chars.len() {
            let c = chars[index];
            let next = chars.get(index + 1).copied();
            if c == '\n' {
                *line += 1;
            }
            match state {
                Lexed::Code => match c {
                    '-' if next == Some('-') => {
                        *state = Lexed::LineComment;
                        index += 1;
                    }
                    '/' if next == Some('*') => {
                        *state = Lexed::BlockComment(1);
                        index += 1;
                    }
                    '\'' => {
                        let escapes = index > 0
                            && matches!(chars[index - 1], 'e' | 'E')
                            && (index < 2 || !chars[index - 2].is_alphanumeric());
                        *state = Lexed::Quoted { escapes };
                        *terminated = false;
                        *at_statement_start = false;
                    }
                    '"' => {
                        *state = Lexed::Identifier;
                        *terminated = false;
                        *at_statement_start = false;
                    }
                    '$' => {
                        let tag_end = chars[index + 1..]
                            .iter()
                            .position(|c| !(c.is_alphanumeric() || *c == '_'));
                        let preceded_by_word = index > 0
                            && (chars[index - 1].is_alphanumeric() || chars[index - 1] == '_');
                        match tag_end {
                            Some(length)
                                if chars[index + 1 + length] == '$'
                                    && !preceded_by_word
                                    && !chars.get(index + 1).is_some_and(char::is_ascii_digit) =>
                            {
                                let tag: String =
                                    chars[index + 1..index + 1 + length].iter().collect();
                                index += length + 1;
                                *state = Lexed::Dollar(tag);
                            }
                            _ => {}
                        }
                        *terminated = false;
                        *at_statement_start = false;
                    }
                    ';' => {
                        *terminated = true;
                        *at_statement_start = true;
                        *copy_word = None;
                    }
                    '\\' => {
                        let (mut command, _) = word(&chars[index + 1..]);
                        if command.is_empty()
                            && let Some(symbol) = next.filter(|c| !c.is_whitespace())
                        {
                            command.push(symbol); // `\;`, `\!`, `\?`
                        }
                        takeover.get_or_insert(SessionTakeover::MetaCommand {
                            command,
                            line: *line,
                        });
                        *state = Lexed::LineComment;
                    }
                    c if c.is_whitespace() => {}
                    c if *at_statement_start && c.is_alphabetic() => {
                        let (head, length) = statement_head(&chars[index..]);
                        if head.split(' ').next() == Some("copy") {
                            *copy_word = Some(String::new());
                        }
                        heads.push(head);
                        *at_statement_start = false;
                        *terminated = false;
                        index += length - 1;
                    }
                    c if c.is_alphabetic() && copy_word.is_some() => {
                        let (current, length) = word(&chars[index..]);
                        let after_from = copy_word.as_deref() == Some("from");
                        if after_from && matches!(current.as_str(), "stdin" | "pstdin") {
                            takeover.get_or_insert(SessionTakeover::CopyFromStdin { line: *line });
                        }
                        *copy_word = Some(current);
                        *terminated = false;
                        index += length - 1;
                    }
                    _ => {
                        *terminated = false;
                        *at_statement_start = false;
                    }
                },
                Lexed::LineComment => {
                    if c == '\n' {
                        *state = Lexed::Code;
                    }
                }
                Lexed::BlockComment(depth) => {
                    if c == '*' && next == Some('/') {
                        *depth -= 1;
                        index += 1;
                        if *depth == 0 {
                            *state = Lexed::Code;
                        }
                    } else if c == '/' && next == Some('*') {
                        *depth += 1;
                        index += 1;
                    }
                }
                Lexed::Quoted { escapes } => {
                    if *escapes && c == '\\' {
                        index += 1;
                    } else if c == '\'' {
                        if next == Some('\'') {
                            index += 1;
                        } else {
                            *state = Lexed::Code;
                        }
                    }
                }
                Lexed::Identifier => {
                    if c == '"' {
                        if next == Some('"') {
                            index += 1;
                        } else {
                            *state = Lexed::Code;
                        }
                    }
                }
                Lexed::Dollar(tag) => {
                    let closing: Vec<char> = format!("${tag}$").chars().collect();
                    if chars[index..].starts_with(&closing) {
                        index += closing.len() - 1;
                        *state = Lexed::Code;
                    }
                }
            }
            index += 1;
        }
    }
}

/// The first word of a statement (lowercased), with the second when the first alone does not
/// say what the statement does (`rollback to`, `prepare transaction`); and how many characters
/// the first word spans.
fn statement_head(chars: &[char]) -> (String, usize) {
    let (first, length) = word(chars);
    let gap = chars[length..]
        .iter()
        .take_while(|c| c.is_whitespace())
        .count();
    let (second, _) = word(&chars[length + gap..]);
    let head = if second.is_empty() {
        first
    } else {
        format!("{first} {second}")
    };
    (head, length)
}

/// The word `chars` starts with (lowercased), and how many characters it spans.
fn word(chars: &[char]) -> (String, usize) {
    let length = chars
        .iter()
        .take_while(|c| c.is_alphanumeric() || **c == '_')
        .count();
    (
        chars[..length].iter().collect::<String>().to_lowercase(),
        length,
    )
}

/// Statements that end or open a transaction: inside a migration's own transaction they would
/// commit part of it, so a failure later could no longer roll the whole migration back.
fn is_transaction_control(head: &str) -> bool {
    let first = head.split(' ').next().unwrap_or_default();
    match first {
        "begin" | "start" | "commit" | "end" | "abort" => true,
        "rollback" => !head.starts_with("rollback to"),
        "prepare" => head.starts_with("prepare transaction"),
        _ => false,
    }
}

impl Lexer {
    /// What the text so far ends inside of, if anything but plain SQL or a line comment.
    pub fn unterminated(&self) -> Option<&'static str> {
        match self.state {
            Lexed::Code | Lexed::LineComment => None,
            Lexed::BlockComment(_) => Some("a /* comment */"),
            Lexed::Quoted { .. } => Some("a 'quoted string'"),
            Lexed::Identifier => Some("a \"quoted identifier\""),
            Lexed::Dollar(_) => Some("a $$dollar-quoted$$ body"),
        }
    }

    /// Whether the last code token so far was `;`.
    pub fn terminated(&self) -> bool {
        self.terminated
    }

    /// The first top-level statement so far that ends or opens a transaction (`commit`,
    /// `begin`, `rollback`, ...), if any.
    pub fn transaction_control(&self) -> Option<&str> {
        self.heads
            .iter()
            .map(String::as_str)
            .find(|head| is_transaction_control(head))
    }

    /// The first meta-command or `COPY … FROM STDIN` so far, if any.
    pub fn session_takeover(&self) -> Option<&SessionTakeover> {
        self.takeover.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_comments_and_dollar_bodies_are_tracked() {
        let unterminated = |text: &str| Lexer::of(text).unterminated();
        assert!(unterminated("select E'it\\'s';").is_none());
        assert!(unterminated("select 'it''s';").is_none());
        assert!(unterminated("select \"a\"\"b\" from t;").is_none());
        assert!(unterminated("/* nested /* twice */ still */ select 1;").is_none());
        assert!(unterminated("select $1::int;").is_none());
        assert_eq!(unterminated("select 'open"), Some("a 'quoted string'"));
        assert_eq!(
            unterminated("select $x$ body"),
            Some("a $$dollar-quoted$$ body")
        );
    }

    #[test]
    fn transaction_control_is_found_only_at_the_top_level() {
        let control = |text: &str| Lexer::of(text).transaction_control().map(str::to_string);
        assert_eq!(
            control("create table a();\ncommit;"),
            Some("commit".to_string())
        );
        assert_eq!(control("-- note\nBEGIN;"), Some("begin".to_string()));
        assert_eq!(
            control("start transaction;"),
            Some("start transaction".to_string())
        );
        assert_eq!(control("savepoint s; rollback to savepoint s;"), None);
        assert_eq!(control("select 'commit;';"), None);
        assert_eq!(
            control(
                "create function f() returns int language plpgsql as $$ begin return 1; end $$;"
            ),
            None
        );
        let mut fed = Lexer::default();
        for line in [
            "create table a(id int);\n",
            "/* a\n",
            "commit; */ select 1;\n",
            "end;\n",
        ] {
            fed.feed(line);
        }
        assert_eq!(fed.transaction_control(), Some("end"));
    }

    #[test]
    fn meta_commands_and_copy_from_stdin_are_found_with_their_line() {
        let takeover = |text: &str| Lexer::of(text).session_takeover().cloned();
        assert_eq!(
            takeover("select 1;\n\\set ON_ERROR_STOP off\nselect 2;"),
            Some(SessionTakeover::MetaCommand {
                command: "set".to_string(),
                line: 2
            })
        );
        assert_eq!(
            takeover("create table t(a int);\n\n-- rows\nCOPY t (a) FROM stdin;\n1\n\\.\n"),
            Some(SessionTakeover::CopyFromStdin { line: 4 })
        );
        assert_eq!(
            takeover("copy t\n  from\n  PSTDIN with (format csv);"),
            Some(SessionTakeover::CopyFromStdin { line: 3 })
        );
        assert_eq!(
            takeover("select 1 \\; select 2;"),
            Some(SessionTakeover::MetaCommand {
                command: ";".to_string(),
                line: 1
            })
        );
        assert_eq!(takeover("copy t to stdout; select 'from stdin';"), None);
        assert_eq!(
            takeover("copy t from '/tmp/t.csv'; select 1 from stdin;"),
            None
        );
        assert_eq!(
            takeover("select E'a\\nb', '\\'; -- \\set x\n/* \\i f */"),
            None
        );
        assert_eq!(
            takeover("do $$ begin execute 'copy t from stdin'; end $$;"),
            None
        );
    }
}
