//! The generic shape of a keepalived.conf: keyword lines, some followed by a `{ … }`
//! block of further lines. Typed parsing ([`crate::parse`]) walks this tree.

use crate::diag::{Diags, Pos};
use crate::lexer::{Item, Token};

/// A keyword line and its block, if it has one.
#[derive(Clone, Debug)]
pub struct Node {
    pub kw: Token,
    pub args: Vec<Token>,
    /// The line's text (for script keywords, which re-split it).
    pub raw: String,
    pub block: Option<Block>,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub open: Pos,
    pub nodes: Vec<Node>,
}

impl Node {
    pub fn name(&self) -> &str {
        &self.kw.text
    }

    pub fn pos(&self) -> &Pos {
        &self.kw.pos
    }

    /// The block's lines; none if the keyword has no block.
    pub fn children(&self) -> &[Node] {
        self.block.as_ref().map_or(&[], |b| &b.nodes)
    }

    /// Every word of the block, line after line (value blocks such as
    /// `virtual_ipaddress` or `notification_email` use lines; `group { a b }` words).
    pub fn block_words(&self) -> impl Iterator<Item = &Token> {
        self.children()
            .iter()
            .flat_map(|n| std::iter::once(&n.kw).chain(n.args.iter()))
    }
}

/// Builds the tree; unbalanced braces are errors at the offending brace. A block opened
/// deeper than `max_depth` is an error and is skipped whole (its braces still counted),
/// so no tree deeper than that exists: the tree is walked and dropped recursively.
pub fn build(items: Vec<Item>, diags: &mut Diags, max_depth: usize) -> Vec<Node> {
    // Frames of open blocks: the nodes collected so far and where the block opened.
    let mut stack: Vec<(Vec<Node>, Option<Pos>)> = vec![(Vec::new(), None)];
    let mut last_was_line = false;
    // Open braces inside a skipped too-deep block (0: not skipping).
    let mut skipping = 0usize;
    for item in items {
        if skipping > 0 {
            match item {
                Item::Open(_) => skipping += 1,
                Item::Close(_) => skipping -= 1,
                Item::Line(_) => {}
            }
            last_was_line = false;
            continue;
        }
        match item {
            Item::Line(line) => {
                let mut toks = line.toks.into_iter();
                let Some(kw) = toks.next() else { continue };
                stack.last_mut().expect("root frame").0.push(Node {
                    kw,
                    args: toks.collect(),
                    raw: line.raw,
                    block: None,
                });
                last_was_line = true;
            }
            Item::Open(pos) => {
                if stack.len() > max_depth {
                    diags.error(
                        &pos,
                        format!("blocks nested deeper than {max_depth} levels"),
                    );
                    skipping = 1;
                    continue;
                }
                let top = &stack.last().expect("root frame").0;
                let ok = last_was_line && top.last().is_some_and(|n| n.block.is_none());
                if !ok {
                    diags.error(&pos, "unexpected '{' (a block must follow its keyword)");
                }
                stack.push((Vec::new(), Some(pos)));
                last_was_line = false;
                if !ok {
                    // Parse the stray block anyway to keep brace matching in step, then drop
                    // it when it closes (its frame has no owner).
                    continue;
                }
            }
            Item::Close(pos) => {
                last_was_line = false;
                if stack.len() == 1 {
                    diags.error(&pos, "unexpected '}' (no block is open)");
                    continue;
                }
                let (nodes, open) = stack.pop().expect("checked length");
                let open = open.expect("only the root frame has no position");
                let parent = &mut stack.last_mut().expect("root frame").0;
                match parent.last_mut() {
                    Some(n) if n.block.is_none() && n.kw.pos < open => {
                        n.block = Some(Block { open, nodes });
                    }
                    _ => {} // a stray block, already reported
                }
            }
        }
    }
    while stack.len() > 1 {
        let (nodes, open) = stack.pop().expect("checked length");
        let open = open.expect("only the root frame has no position");
        if !diags.stopped {
            diags.error(&open, "missing '}' for the block opened here");
        }
        // Keep the unclosed block on its keyword so no second, misleading error follows.
        let parent = &mut stack.last_mut().expect("root frame").0;
        if let Some(n) = parent.last_mut() {
            if n.block.is_none() && n.kw.pos < open {
                n.block = Some(Block { open, nodes });
            }
        }
    }
    stack.pop().map(|f| f.0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::{Lexer, LoadOptions};
    use std::path::Path;

    fn tree(text: &str) -> (Vec<Node>, Diags) {
        let opts = LoadOptions::default();
        let mut diags = Diags::default();
        let items = Lexer::new(&opts, &mut diags).run_str(Path::new("t.conf"), text);
        let nodes = build(items, &mut diags, 64);
        (nodes, diags)
    }

    #[test]
    fn nested_blocks_on_one_or_several_lines() {
        let (n, d) = tree("a 1 {\n b { c }\n d\n}\ne\n{\nf\n}\n");
        assert!(d.list.is_empty());
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].children().len(), 2);
        assert_eq!(n[0].children()[0].children()[0].name(), "c");
        assert_eq!(n[1].children()[0].name(), "f");
    }

    #[test]
    fn unbalanced_braces_are_reported_where_they_are() {
        let (_, d) = tree("a {\n b\n");
        assert_eq!(
            d.list[0].to_string(),
            "t.conf:1:3: error: missing '}' for the block opened here"
        );
        let (_, d) = tree("a\n}\n");
        assert_eq!(
            d.list[0].to_string(),
            "t.conf:2:1: error: unexpected '}' (no block is open)"
        );
        let (_, d) = tree("a { }\n{ b }\n");
        assert_eq!(d.list[0].pos.to_string(), "t.conf:2:1");
    }
}
