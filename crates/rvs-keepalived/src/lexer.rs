//! keepalived's lexical rules (`lib/parser.c` `read_line`, `decomment`, `alloc_strvec_r`):
//!
//! * comments start at `#` or `!` outside double quotes; `\#` and `\!` escape them;
//! * a trailing `\` continues the line (joined with a space; inside a `$NAME=` definition
//!   each continued line stays a line of its own, as keepalived's multi-line definitions);
//! * `{` and `}` outside quotes are items of their own wherever they appear on a line;
//! * a token starting with `"` runs to the next `"` (quotes removed, spaces kept), any
//!   other token ends at white space or a `"`;
//! * `include`/`includer`/`includem`/`includew`/`includeb`/`includea PATTERN`: glob with
//!   `{a,b}` braces, relative to the directory of the including file; the checked variants
//!   make a missing match (`m`,`w`,`b`,`a`) or an unreadable file (all of them) an error;
//! * `@ID line` / `@^ID line`: the line is kept only if ID is (is not) the configuration
//!   id ([`LoadOptions::config_id`], keepalived's `-i`, default the host name);
//! * `$NAME=value` defines, `$NAME` / `${NAME}` substitutes (undefined names are left
//!   alone); built-ins `${_PWD}`, `${_HASH}`, `${_BANG}`, `${_INSTANCE}`.
//!
//! Not supported (reported as warnings): `~SEQ`/`~LST` sequence blocks, `${_RANDOM}` and
//! `${_ENV}`, definitions with parameters.
//!
//! Everything a load reads or produces is bounded ([`Limits`]): a bound crossed is an
//! error at the place it happened and the lexer stops there (the load fails, nothing is
//! applied), so a hostile file costs bounded time and memory.

use crate::diag::{Diags, LoadError, Pos};
use crate::limits::{self, FileId, Limits};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of a load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// The configuration id matched by `@ID` lines (keepalived `-i`; it defaults to the
    /// host name up to the first dot, which the caller supplies).
    pub config_id: Option<String>,
    /// The instance name substituted for `${_INSTANCE}` (keepalived `--instance`).
    pub instance: Option<String>,
    /// Bounds on what the load reads and produces.
    pub limits: Limits,
}

/// A word of a line with the place it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub pos: Pos,
}

/// One logical line between braces.
#[derive(Clone, Debug)]
pub struct Line {
    pub toks: Vec<Token>,
    /// The line's text (comments removed, definitions substituted, quotes kept), which
    /// script keywords split again with their own quoting rules.
    pub raw: String,
}

#[derive(Clone, Debug)]
pub enum Item {
    Open(Pos),
    Close(Pos),
    Line(Line),
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Ch {
    c: char,
    line: u32,
    col: u32,
}

struct Def {
    /// One entry per line of a multi-line definition.
    lines: Vec<Vec<Ch>>,
}

pub struct Lexer<'a> {
    opts: &'a LoadOptions,
    lim: Limits,
    diags: &'a mut Diags,
    defs: HashMap<String, Def>,
    items: Vec<Item>,
    /// The files being read, outermost first: including one of them again is a cycle.
    reading: Vec<FileId>,
    files_read: usize,
    bytes_read: u64,
    expanded: usize,
    /// A bound was crossed: nothing more is read or produced.
    stopped: bool,
    /// The definition the continued lines of a multi-line `$NAME=` belong to.
    last_def: Option<String>,
}

impl<'a> Lexer<'a> {
    pub fn new(opts: &'a LoadOptions, diags: &'a mut Diags) -> Lexer<'a> {
        Lexer {
            opts,
            lim: opts.limits,
            diags,
            defs: HashMap::new(),
            items: Vec::new(),
            reading: Vec::new(),
            files_read: 0,
            bytes_read: 0,
            expanded: 0,
            stopped: false,
            last_def: None,
        }
    }

    /// Reads the main file and everything it includes.
    pub fn run(mut self, path: &Path) -> Result<Vec<Item>, LoadError> {
        let (text, id) =
            limits::read_file(path, self.lim.file_bytes).map_err(|e| LoadError::NotFound {
                path: path.to_path_buf(),
                source: e.into_io(),
            })?;
        self.files_read = 1;
        self.bytes_read = text.len() as u64;
        self.reading.push(id);
        self.file(path, &text);
        Ok(self.items)
    }

    /// Lexes `text` as if it were the file `path` (tests, `-` input).
    pub fn run_str(mut self, path: &Path, text: &str) -> Vec<Item> {
        let file: Arc<Path> = Arc::from(path);
        if text.len() as u64 > self.lim.file_bytes {
            let max = self.lim.file_bytes;
            self.stop(
                &Pos::new(&file, 1, 1),
                format!("file larger than {max} bytes"),
            );
            return self.items;
        }
        self.files_read = 1;
        self.bytes_read = text.len() as u64;
        self.file(path, text);
        self.items
    }

    /// An error that ends the lexing: the load fails with it and reads nothing more.
    fn stop(&mut self, pos: &Pos, msg: impl Into<String>) {
        self.diags.error(pos, msg);
        self.stopped = true;
        self.diags.stopped = true;
    }

    fn push_item(&mut self, item: Item) {
        if self.stopped {
            return;
        }
        if self.items.len() >= self.lim.items {
            let pos = match &item {
                Item::Open(p) | Item::Close(p) => p.clone(),
                Item::Line(l) => l
                    .toks
                    .first()
                    .map(|t| t.pos.clone())
                    .unwrap_or_else(|| Pos::new(&Arc::from(Path::new("")), 0, 0)),
            };
            let max = self.lim.items;
            self.stop(&pos, format!("more than {max} keyword lines and braces"));
            return;
        }
        self.items.push(item);
    }

    fn file(&mut self, path: &Path, text: &str) {
        let file: Arc<Path> = Arc::from(path);
        let mut pending: Vec<Ch> = Vec::new();
        let mut in_def = false;
        let max_line = self.lim.line_chars;
        for (i, phys) in text.split('\n').enumerate() {
            if self.stopped {
                return;
            }
            let lineno = (i + 1) as u32;
            let phys = phys.strip_suffix('\r').unwrap_or(phys);
            if phys.len() > max_line && phys.chars().count() > max_line {
                let pos = Pos::new(&file, lineno, max_line as u32 + 1);
                self.stop(&pos, format!("line longer than {max_line} characters"));
                return;
            }
            let chars: Vec<Ch> = phys
                .chars()
                .enumerate()
                .map(|(j, c)| Ch {
                    c,
                    line: lineno,
                    col: (j + 1) as u32,
                })
                .collect();
            let (mut line, cont) = self.decomment(&file, chars);
            if in_def {
                // A continuation line of a multi-line definition: a line of its own.
                trim(&mut line);
                if let Some(Def { lines }) = self.defs.get_mut(&self.last_def_name()) {
                    if !line.is_empty() {
                        lines.push(line);
                    }
                }
                in_def = cont;
                continue;
            }
            if pending.len() + 1 + line.len() > max_line {
                let first = pending.first().or(line.first()).copied();
                let pos = first.map_or(Pos::new(&file, lineno, 1), |c| pos_of(&file, &c));
                self.stop(&pos, format!("line continued beyond {max_line} characters"));
                return;
            }
            if cont {
                let first_part = pending.is_empty();
                if !pending.is_empty() {
                    pending.push(Ch {
                        c: ' ',
                        line: lineno,
                        col: 0,
                    });
                }
                pending.extend(line);
                // A definition that continues is a multi-line one; only the line that
                // starts it can say so (checking every continued line again would cost
                // the square of their number).
                if first_part && !pending.is_empty() && self.definition(&pending, true) {
                    pending.clear();
                    in_def = true;
                }
                continue;
            }
            if !pending.is_empty() {
                pending.push(Ch {
                    c: ' ',
                    line: lineno,
                    col: 0,
                });
                pending.extend(line);
                line = std::mem::take(&mut pending);
            }
            trim(&mut line);
            if line.is_empty() {
                continue;
            }
            self.logical(path, &file, line);
        }
        if !pending.is_empty() {
            trim(&mut pending);
            if !pending.is_empty() {
                self.logical(path, &file, pending);
            }
        }
    }

    fn last_def_name(&self) -> String {
        self.last_def.clone().unwrap_or_default()
    }

    /// Removes the comment and reports whether the line continues (trailing `\`).
    fn decomment(&mut self, file: &Arc<Path>, chars: Vec<Ch>) -> (Vec<Ch>, bool) {
        let mut out = Vec::with_capacity(chars.len());
        let mut quote: Option<Ch> = None;
        let mut cont = false;
        let mut i = 0;
        while i < chars.len() {
            let ch = chars[i];
            match ch.c {
                '"' => {
                    quote = if quote.is_some() { None } else { Some(ch) };
                    out.push(ch);
                }
                '\\' if i + 1 == chars.len() => {
                    cont = true;
                }
                '\\' => {
                    let next = chars[i + 1];
                    if quote.is_none() && (next.c == '#' || next.c == '!') {
                        out.push(next);
                    } else {
                        out.push(ch);
                        out.push(next);
                    }
                    i += 1;
                }
                '#' | '!' if quote.is_none() => break,
                _ => out.push(ch),
            }
            i += 1;
        }
        if let Some(q) = quote {
            if !cont {
                self.diags
                    .error(&Pos::new(file, q.line, q.col), "unterminated quoted string");
                // Drop the line: a half-quoted value must not be applied.
                return (Vec::new(), false);
            }
        }
        (out, cont)
    }

    /// A logical line: include, conditional, definition, substitution, then items.
    fn logical(&mut self, path: &Path, file: &Arc<Path>, line: Vec<Ch>) {
        let text: String = line.iter().map(|c| c.c).collect();
        if let Some((kind, pattern)) = include_directive(&text) {
            let pos = pos_of(file, &line[0]);
            self.include(path, &pos, kind, pattern);
            return;
        }
        let Some(line) = self.conditional(line) else {
            return;
        };
        if line.is_empty() {
            return;
        }
        if self.definition(&line, false) {
            return;
        }
        if line[0].c == '~' {
            self.diags.warn_once(
                "~SEQ",
                &pos_of(file, &line[0]),
                "~SEQ/~LST sequence blocks are not supported by rvs - line ignored",
            );
            return;
        }
        for l in self.substitute(path, file, line) {
            self.split(file, l);
        }
    }

    /// `@ID rest` and `@^ID rest`.
    fn conditional(&self, line: Vec<Ch>) -> Option<Vec<Ch>> {
        if line[0].c != '@' {
            return Some(line);
        }
        let negate = line.get(1).is_some_and(|c| c.c == '^');
        let start = if negate { 2 } else { 1 };
        let end = line.iter().position(|c| c.c == ' ' || c.c == '\t')?;
        let id: String = line[start..end].iter().map(|c| c.c).collect();
        let matches = self.opts.config_id.as_deref() == Some(id.as_str());
        if matches == negate {
            return None;
        }
        let mut rest = line[end..].to_vec();
        trim(&mut rest);
        Some(rest)
    }

    /// `$NAME=value` (returns true if the line was one). `continued`: the value goes on
    /// on the next line.
    fn definition(&mut self, line: &[Ch], continued: bool) -> bool {
        let mut line = line.to_vec();
        trim(&mut line);
        if line.first().map(|c| c.c) != Some('$') {
            return false;
        }
        let name_len = line[1..]
            .iter()
            .take_while(|c| c.c.is_ascii_alphanumeric() || c.c == '_')
            .count();
        if name_len == 0 || !(line[1].c.is_ascii_alphabetic() || line[1].c == '_') {
            return false;
        }
        let mut i = 1 + name_len;
        while i < line.len() && (line[i].c == ' ' || line[i].c == '\t') {
            i += 1;
        }
        if line.get(i).map(|c| c.c) != Some('=') {
            return false;
        }
        let name: String = line[1..1 + name_len].iter().map(|c| c.c).collect();
        let mut value = line[i + 1..].to_vec();
        trim(&mut value);
        let lines = if value.is_empty() && continued {
            Vec::new()
        } else {
            vec![value]
        };
        self.defs.insert(name.clone(), Def { lines });
        self.last_def = Some(name);
        true
    }

    /// Replaces `$NAME` and `${NAME}`. A multi-line definition used alone on a line
    /// becomes its lines. Each line stays within the line length and all rounds of all
    /// lines within the expansion budget: past them the line is refused and lexing stops
    /// (a definition referring twice to another doubles at each level).
    fn substitute(&mut self, path: &Path, file: &Arc<Path>, line: Vec<Ch>) -> Vec<Vec<Ch>> {
        if !line.iter().any(|c| c.c == '$') {
            return vec![line];
        }
        let start = pos_of(file, &line[0]);
        let max_line = self.lim.line_chars;
        let mut out: Vec<Ch> = Vec::with_capacity(line.len());
        let mut extra: Vec<Vec<Ch>> = Vec::new();
        let mut i = 0;
        let mut rounds = 0;
        let mut line = line;
        'again: loop {
            while i < line.len() {
                let ch = line[i];
                if ch.c != '$' {
                    out.push(ch);
                    i += 1;
                    continue;
                }
                let (braced, name_start) = match line.get(i + 1) {
                    Some(c) if c.c == '{' => (true, i + 2),
                    _ => (false, i + 1),
                };
                let name_len = line[name_start.min(line.len())..]
                    .iter()
                    .take_while(|c| c.c.is_ascii_alphanumeric() || c.c == '_')
                    .count();
                let end = name_start + name_len;
                let well_formed = name_len > 0
                    && (line[name_start].c.is_ascii_alphabetic() || line[name_start].c == '_')
                    && if braced {
                        line.get(end).is_some_and(|c| c.c == '}')
                    } else {
                        line.get(end)
                            .is_none_or(|c| matches!(c.c, ' ' | '\t' | ',' | ')'))
                    };
                let name: String = if well_formed {
                    line[name_start..end].iter().map(|c| c.c).collect()
                } else {
                    String::new()
                };
                let after = if braced { end + 1 } else { end };
                let value: Option<Vec<Vec<Ch>>> = if !well_formed {
                    None
                } else if let Some(d) = self.defs.get(&name) {
                    Some(d.lines.clone())
                } else {
                    builtin(path, &name, self.opts).map(|v| {
                        vec![v
                            .chars()
                            .map(|c| Ch {
                                c,
                                line: ch.line,
                                col: ch.col,
                            })
                            .collect()]
                    })
                };
                match value {
                    None => {
                        out.push(ch);
                        i += 1;
                    }
                    Some(lines) if lines.len() > 1 && out.is_empty() && after == line.len() => {
                        // A multi-line definition alone on its line.
                        let mut it = lines.into_iter();
                        out.extend(it.next().unwrap_or_default());
                        extra.extend(it);
                        i = after;
                    }
                    Some(lines) => {
                        let grown = lines.iter().map(|l| l.len() + 1).sum::<usize>();
                        if out.len() + grown > max_line + 1 {
                            self.stop(
                                &start,
                                format!("line longer than {max_line} characters after $NAME substitution"),
                            );
                            return Vec::new();
                        }
                        // Inline use: the lines joined by spaces, positioned at the `$`.
                        for (k, l) in lines.into_iter().enumerate() {
                            if k > 0 {
                                out.push(Ch { c: ' ', ..ch });
                            }
                            out.extend(l.into_iter().map(|c| Ch {
                                c: c.c,
                                line: ch.line,
                                col: ch.col,
                            }));
                        }
                        i = after;
                    }
                }
            }
            self.expanded += out.len() + extra.iter().map(Vec::len).sum::<usize>();
            if self.expanded > self.lim.expanded_chars {
                let max = self.lim.expanded_chars;
                self.stop(
                    &start,
                    format!("$NAME substitutions produce more than {max} characters"),
                );
                return Vec::new();
            }
            // A value may itself refer to definitions (bounded, as keepalived's buffer is).
            rounds += 1;
            if rounds < 8 && out.iter().any(|c| c.c == '$') && out != line {
                line = std::mem::take(&mut out);
                i = 0;
                continue 'again;
            }
            break;
        }
        let mut all = vec![out];
        all.extend(extra);
        all
    }

    /// Cuts a line at braces outside quotes and tokenizes each piece.
    fn split(&mut self, file: &Arc<Path>, line: Vec<Ch>) {
        let mut seg: Vec<Ch> = Vec::new();
        let mut quote = false;
        for ch in line {
            match ch.c {
                '"' => {
                    quote = !quote;
                    seg.push(ch);
                }
                '{' | '}' if !quote => {
                    self.segment(file, std::mem::take(&mut seg));
                    let pos = pos_of(file, &ch);
                    self.push_item(if ch.c == '{' {
                        Item::Open(pos)
                    } else {
                        Item::Close(pos)
                    });
                }
                _ => seg.push(ch),
            }
        }
        self.segment(file, seg);
    }

    fn segment(&mut self, file: &Arc<Path>, mut seg: Vec<Ch>) {
        trim(&mut seg);
        if seg.is_empty() {
            return;
        }
        let raw: String = seg.iter().map(|c| c.c).collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < seg.len() {
            if seg[i].c == ' ' || seg[i].c == '\t' {
                i += 1;
                continue;
            }
            let start = seg[i];
            let mut text = String::new();
            if start.c == '"' {
                i += 1;
                while i < seg.len() && seg[i].c != '"' {
                    text.push(seg[i].c);
                    i += 1;
                }
                i += 1;
            } else {
                while i < seg.len() && !matches!(seg[i].c, ' ' | '\t' | '"') {
                    text.push(seg[i].c);
                    i += 1;
                }
            }
            toks.push(Token {
                text,
                pos: pos_of(file, &start),
            });
        }
        self.push_item(Item::Line(Line { toks, raw }));
    }

    fn include(&mut self, path: &Path, pos: &Pos, kind: IncludeKind, pattern: &str) {
        let max_depth = self.lim.include_depth;
        if self.reading.len() > max_depth {
            self.diags.error(
                pos,
                format!("includes nested deeper than {max_depth} levels"),
            );
            return;
        }
        let pattern = pattern.trim().trim_matches('"');
        let dir = path.parent().unwrap_or(Path::new("."));
        let Some(patterns) = expand_braces_bounded(pattern, MAX_BRACE_EXPANSIONS) else {
            self.stop(
                pos,
                format!("include pattern expands to more than {MAX_BRACE_EXPANSIONS} patterns"),
            );
            return;
        };
        let room = self.lim.files.saturating_sub(self.files_read);
        let mut files: Vec<PathBuf> = Vec::new();
        for pat in patterns {
            let full = if Path::new(&pat).is_absolute() {
                PathBuf::from(&pat)
            } else {
                dir.join(&pat)
            };
            let Some(full_str) = full.to_str() else {
                continue;
            };
            match glob::glob(full_str) {
                Ok(paths) => files.extend(
                    paths
                        .flatten()
                        .filter(|p| !p.is_dir())
                        .take(room + 1 - files.len().min(room)),
                ),
                Err(e) => self
                    .diags
                    .error(pos, format!("invalid include pattern '{pattern}': {e}")),
            }
            if files.len() > room {
                let max = self.lim.files;
                self.stop(pos, format!("more than {max} configuration files read"));
                return;
            }
        }
        if files.is_empty() {
            if kind.must_match {
                self.diags
                    .error(pos, format!("no configuration file matches '{pattern}'"));
            } else {
                self.diags.warn(
                    pos,
                    format!("no configuration file matches include '{pattern}'"),
                );
            }
            return;
        }
        for f in files {
            if self.stopped {
                return;
            }
            self.include_file(pos, kind, &f);
        }
    }

    fn include_file(&mut self, pos: &Pos, kind: IncludeKind, f: &Path) {
        self.files_read += 1;
        let left = self.lim.read_bytes.saturating_sub(self.bytes_read);
        let max = self.lim.file_bytes.min(left);
        match limits::read_file(f, max) {
            Ok((text, id)) => {
                if self.reading.contains(&id) {
                    self.stop(
                        pos,
                        format!("include cycle: {} is already being read", f.display()),
                    );
                    return;
                }
                self.bytes_read += text.len() as u64;
                self.reading.push(id);
                self.file(f, &text);
                self.reading.pop();
            }
            Err(limits::ReadError::TooLarge { .. }) if max < self.lim.file_bytes => {
                let total = self.lim.read_bytes;
                self.stop(
                    pos,
                    format!("configuration files together larger than {total} bytes"),
                );
            }
            // Blocking or endless files, and files over the size bound, are refused by
            // every include variant.
            Err(e) if e.is_hostile() => self.diags.error(
                pos,
                format!("cannot read included file {}: {e}", f.display()),
            ),
            Err(e) if kind.must_read => self.diags.error(
                pos,
                format!("cannot read included file {}: {e}", f.display()),
            ),
            Err(e) => self.diags.warn(
                pos,
                format!("cannot read included file {} - skipped: {e}", f.display()),
            ),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct IncludeKind {
    must_read: bool,
    must_match: bool,
}

fn include_directive(text: &str) -> Option<(IncludeKind, &str)> {
    let rest = text.strip_prefix("include")?;
    let (kind, rest) = match rest.chars().next()? {
        ' ' | '\t' => (
            IncludeKind {
                must_read: false,
                must_match: false,
            },
            rest,
        ),
        'r' => (
            IncludeKind {
                must_read: true,
                must_match: false,
            },
            &rest[1..],
        ),
        'm' | 'w' | 'b' | 'a' => (
            IncludeKind {
                must_read: true,
                must_match: true,
            },
            &rest[1..],
        ),
        _ => return None,
    };
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some((kind, rest.trim()))
}

/// At most this many patterns come out of one include's `{a,b}` groups (each group
/// multiplies them: twenty groups of two make a million).
const MAX_BRACE_EXPANSIONS: usize = 1024;

/// csh-style `{a,b}` expansion (glob(3) `GLOB_BRACE`).
pub fn expand_braces(pattern: &str) -> Vec<String> {
    expand_braces_bounded(pattern, usize::MAX).unwrap_or_default()
}

/// The first group at depth 0 that closes: (open, commas at depth 1, close).
fn first_group(s: &[char]) -> Option<(usize, Vec<usize>, usize)> {
    let mut depth = 0;
    let mut open = None;
    let mut commas = Vec::new();
    for (i, &c) in s.iter().enumerate() {
        match c {
            '{' => {
                if depth == 0 {
                    open = Some(i);
                    commas.clear();
                }
                depth += 1;
            }
            ',' if depth == 1 => commas.push(i),
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return Some((open?, commas, i));
                }
            }
            _ => {}
        }
    }
    None
}

/// [`expand_braces`] with no recursion (a pattern of thousands of groups must not use
/// the stack) and `None` once more than `max` patterns would come out.
fn expand_braces_bounded(pattern: &str, max: usize) -> Option<Vec<String>> {
    let mut out = Vec::new();
    // Depth first, first alternative first: the order of the recursive definition.
    let mut todo: Vec<Vec<char>> = vec![pattern.chars().collect()];
    while let Some(s) = todo.pop() {
        let Some((open, commas, close)) = first_group(&s) else {
            if out.len() >= max {
                return None;
            }
            out.push(s.into_iter().collect());
            continue;
        };
        let mut bounds = vec![open];
        bounds.extend(&commas);
        bounds.push(close);
        if out.len() + todo.len() + bounds.len() - 1 > max {
            return None;
        }
        for w in bounds.windows(2).rev() {
            let mut alt = s[..open].to_vec();
            alt.extend_from_slice(&s[w[0] + 1..w[1]]);
            alt.extend_from_slice(&s[close + 1..]);
            todo.push(alt);
        }
    }
    Some(out)
}

fn builtin(path: &Path, name: &str, opts: &LoadOptions) -> Option<String> {
    match name {
        "_PWD" => Some(
            path.parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        "_HASH" => Some("#".into()),
        "_BANG" => Some("!".into()),
        "_INSTANCE" => Some(opts.instance.clone().unwrap_or_default()),
        _ => None,
    }
}

fn trim(line: &mut Vec<Ch>) {
    while line.last().is_some_and(|c| c.c == ' ' || c.c == '\t') {
        line.pop();
    }
    let lead = line
        .iter()
        .take_while(|c| c.c == ' ' || c.c == '\t')
        .count();
    line.drain(..lead);
}

fn pos_of(file: &Arc<Path>, c: &Ch) -> Pos {
    Pos::new(file, c.line, c.col.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(text: &str) -> (Vec<Item>, Diags) {
        let opts = LoadOptions {
            config_id: Some("lb1".into()),
            instance: None,
            ..LoadOptions::default()
        };
        let mut diags = Diags::default();
        let items = Lexer::new(&opts, &mut diags).run_str(Path::new("t.conf"), text);
        (items, diags)
    }

    fn words(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Item::Open(_) => "{".to_string(),
                Item::Close(_) => "}".to_string(),
                Item::Line(l) => l
                    .toks
                    .iter()
                    .map(|t| format!("[{}]", t.text))
                    .collect::<String>(),
            })
            .collect()
    }

    #[test]
    fn comments_quotes_and_braces_split_like_keepalived() {
        let (items, d) =
            lex("a b # c\n! all comment\nx \"y # z\" w{ v }\nesc \\# not comment ! but this\n");
        assert!(d.list.is_empty(), "{:?}", d.list);
        assert_eq!(
            words(&items),
            [
                "[a][b]",
                "[x][y # z][w]",
                "{",
                "[v]",
                "}",
                "[esc][#][not][comment]"
            ]
        );
    }

    #[test]
    fn token_positions_are_line_and_column() {
        let (items, _) = lex("\n   key  \"v w\"\n");
        let Item::Line(l) = &items[0] else { panic!() };
        assert_eq!(l.toks[0].pos.to_string(), "t.conf:2:4");
        assert_eq!(l.toks[1].pos.to_string(), "t.conf:2:9");
        assert_eq!(l.toks[1].text, "v w");
    }

    #[test]
    fn continuation_joins_lines() {
        let (items, _) = lex("notify_up /bin/echo \\\n   up\n");
        assert_eq!(words(&items), ["[notify_up][/bin/echo][up]"]);
    }

    #[test]
    fn unterminated_quote_is_an_error_with_its_position() {
        let (_, d) = lex("a \"b c\n");
        assert_eq!(
            d.list[0].to_string(),
            "t.conf:1:3: error: unterminated quoted string"
        );
    }

    #[test]
    fn definitions_and_conditionals() {
        let (items, _) = lex(
            "$VIP=10.0.0.1\n$PORT = 80\nvs $VIP ${PORT}\n@lb1 mine\n@lb2 theirs\n@^lb2 not_lb2\nkeep $UNDEF\n",
        );
        assert_eq!(
            words(&items),
            [
                "[vs][10.0.0.1][80]",
                "[mine]",
                "[not_lb2]",
                "[keep][$UNDEF]"
            ]
        );
    }

    #[test]
    fn multiline_definition_expands_to_lines() {
        let (items, _) = lex("$RS=real_server 1.1.1.1 80 { \\\n weight 2 \\\n }\n$RS\n");
        assert_eq!(
            words(&items),
            ["[real_server][1.1.1.1][80]", "{", "[weight][2]", "}"]
        );
    }

    #[test]
    fn brace_expansion() {
        assert_eq!(
            expand_braces("a/{b,c}/{d,e}.conf"),
            ["a/b/d.conf", "a/b/e.conf", "a/c/d.conf", "a/c/e.conf"]
        );
        assert_eq!(expand_braces("plain"), ["plain"]);
    }
}
