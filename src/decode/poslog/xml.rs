//! Streaming XML front end: quick-xml events → one small element tree per `<Transaction>`,
//! handed out as soon as its end tag is read, so a later syntax error does not lose the
//! transactions before it. Names are matched by local name; prefixes are kept for `ext`.

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// One element of a transaction: qualified name, attributes, direct text, children.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub qname: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

fn local(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

impl Node {
    pub fn name(&self) -> &str {
        local(&self.qname)
    }
    pub fn prefixed(&self) -> bool {
        self.qname.contains(':')
    }
    /// Direct text, trimmed.
    pub fn txt(&self) -> &str {
        self.text.trim()
    }
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name() == name)
    }
    pub fn kids<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name() == name)
    }
    /// Trimmed, non-empty text of the first child `name`.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(Node::txt).filter(|t| !t.is_empty())
    }
    /// Attribute by local name (namespace declarations are not kept).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| local(k) == name)
            .map(|(_, v)| v.trim())
    }
    /// `name="true"` as attribute or child element.
    pub fn flag(&self, name: &str) -> bool {
        self.attr(name)
            .or_else(|| self.text_of(name))
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }
    /// Every element of the subtree, depth first.
    pub fn walk<'a>(&'a self, out: &mut Vec<&'a Node>) {
        out.push(self);
        for c in &self.children {
            c.walk(out);
        }
    }
}

fn open(e: &BytesStart<'_>) -> Result<Node, String> {
    let mut node = Node {
        qname: e.name().as_ref().to_owned(),
        ..Node::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|err| format!("bad attribute in <{}>: {err}", node.qname))?;
        let key = a.key.as_ref();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let value = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| format!("attribute {key} of <{}>: {err}", node.qname))?;
        node.attrs.push((key.to_owned(), value.into_owned()));
    }
    Ok(node)
}

/// Most elements one transaction may have: bounds the tree's memory (a few MB at most,
/// where 8 MiB of `<a/>` would otherwise cost hundreds).
const MAX_ELEMENTS: usize = 20_000;

/// Parses `doc`, calling `on_tx(index, tree, raw bytes)` for each complete `<Transaction>`
/// (inside a `POSLog` root, or the root itself). Returns the number of transactions, or
/// the first reason the document is unusable (which ends parsing).
pub(super) fn parse(
    doc: &str,
    max_depth: usize,
    mut on_tx: impl FnMut(usize, Node, &[u8]),
) -> Result<usize, String> {
    let mut reader = Reader::from_str(doc);
    let (mut depth, mut count, mut root_done, mut root_is_log) = (0usize, 0usize, false, false);
    let mut open_names: Vec<String> = Vec::new();
    let mut stack: Vec<Node> = Vec::new(); // the transaction being built
    let (mut tx_start, mut elements) = (0usize, 0usize);
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let ev = reader.read_event().map_err(|e| {
            format!(
                "not well-formed XML at byte {}: {e}",
                reader.error_position()
            )
        })?;
        let (start, empty) = match &ev {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            depth += 1;
            if depth > max_depth {
                return Err(format!(
                    "elements nest deeper than {max_depth} levels at byte {before}"
                ));
            }
            let node = open(e)?;
            if depth == 1 {
                if root_done {
                    return Err(format!(
                        "a second root element <{}> at byte {before}",
                        node.qname
                    ));
                }
                match node.name() {
                    "POSLog" => root_is_log = true,
                    "Transaction" => {}
                    other => {
                        return Err(format!(
                            "the root element <{other}> is neither POSLog nor Transaction"
                        ));
                    }
                }
            }
            // A Transaction under POSLog at any depth (some exports wrap them in batches).
            if !stack.is_empty() || (node.name() == "Transaction" && (depth == 1 || root_is_log)) {
                if stack.is_empty() {
                    (tx_start, elements) = (before, 0);
                }
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(format!(
                        "a Transaction has more than {MAX_ELEMENTS} elements"
                    ));
                }
                stack.push(node);
            }
            if !empty {
                open_names.push(e.name().as_ref().to_owned());
            }
        }
        let closes = empty || matches!(ev, Event::End(_));
        match ev {
            Event::DocType(_) => {
                return Err(format!(
                    "the document has a DOCTYPE at byte {before}; DTDs and entity declarations are refused"
                ));
            }
            Event::Decl(d) => {
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|e| format!("bad XML declaration: {e}"))?;
                    if !enc.eq_ignore_ascii_case("utf-8") && !enc.eq_ignore_ascii_case("utf8") {
                        return Err(format!(
                            "the document declares encoding {enc:?}; only UTF-8 is accepted"
                        ));
                    }
                }
            }
            Event::Text(t) => push_text(&mut stack, depth, &t.xml10_content(), before)?,
            Event::CData(t) => push_text(&mut stack, depth, &t.xml10_content(), before)?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => resolve_xml_entity(&r).map(str::to_owned).ok_or_else(|| {
                        format!("entity reference &{}; at byte {before} is not one of the five predefined XML entities", &*r)
                    })?,
                    Err(e) => return Err(format!("bad character reference at byte {before}: {e}")),
                };
                push_text(&mut stack, depth, &resolved, before)?;
            }
            Event::Eof => {
                if let Some(name) = open_names.last() {
                    return Err(format!("the document ends inside <{name}> (truncated?)"));
                }
                if !root_done {
                    return Err("the document has no root element".into());
                }
                if count == 0 {
                    return Err("the document contains no Transaction".into());
                }
                return Ok(count);
            }
            _ => {}
        }
        if closes {
            if !empty {
                open_names.pop();
            }
            depth = depth.saturating_sub(1);
            root_done |= depth == 0;
            if let Some(node) = stack.pop() {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => {
                        let end = usize::try_from(reader.buffer_position()).unwrap_or(doc.len());
                        count += 1;
                        on_tx(
                            count,
                            node,
                            doc.as_bytes().get(tx_start..end).unwrap_or_default(),
                        );
                    }
                }
            }
        }
    }
}

fn push_text(stack: &mut [Node], depth: usize, text: &str, at: usize) -> Result<(), String> {
    match stack.last_mut() {
        Some(node) => node.text.push_str(text),
        None if depth == 0 && !text.trim().is_empty() => {
            return Err(format!("text outside the root element at byte {at}"));
        }
        None => {}
    }
    Ok(())
}
