//! Path → position index of a YAML document, built from `saphyr-parser` events.
//!
//! serde's value tree has no positions, so semantic errors found later ("network "C" is not
//! defined") look their place up here by field path (`nodes.n2.interfaces.C`,
//! `monitors[0].interval`). The same pass finds duplicate mapping keys — duplicate node and
//! network names — and reports every one of them, where serde would stop at the first.
//!
//! Paths unknown to the index (keys brought in by an alias or a `<<` merge) fall back to the
//! nearest indexed ancestor, so every error still gets a place.

use super::Location;
use saphyr_parser::{Event, Parser, Span};
use std::collections::HashMap;

/// Positions of one node of the document.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The mapping key naming this node, when it is a mapping value.
    pub key: Option<Location>,
    /// The node itself (first character of the scalar, or `[`/`{`/first entry).
    pub value: Location,
}

/// A duplicate key: `path` is the key's full path, `first` where it appeared first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Duplicate {
    pub path: String,
    pub key: String,
    pub at: Location,
    pub first: Location,
}

#[derive(Debug, Default)]
pub(crate) struct PosIndex {
    entries: HashMap<String, Entry>,
}

/// Nesting deeper than this is refused: a configuration needs about 6 levels; the bound keeps
/// hostile input from growing the frame stack without limit (serde_norway stops at 128 too).
const MAX_DEPTH: usize = 64;

/// Node count bound: a large 64-node configuration has a few thousand nodes.
const MAX_EVENTS: usize = 200_000;

fn loc(span: &Span) -> Location {
    Location {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// Joins a child key onto a path: `nodes` + `n2` → `nodes.n2`.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Joins a sequence index onto a path: `monitors` + 0 → `monitors[0]`.
pub(crate) fn join_index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

enum Frame {
    Map {
        path: String,
        /// Key text and position once the key has been read; `None` while a key is expected.
        pending: Option<(String, Option<Location>)>,
        seen: HashMap<String, Location>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

impl PosIndex {
    /// Builds the index. `Err` carries a syntax error (location, message).
    pub(crate) fn build(text: &str) -> Result<(PosIndex, Vec<Duplicate>), (Location, String)> {
        let mut index = PosIndex::default();
        let mut dups = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut documents = 0usize;
        for (count, item) in Parser::new_from_str(text).enumerate() {
            let (event, span) = item.map_err(|e| {
                (
                    Location {
                        line: e.marker().line(),
                        column: e.marker().col() + 1,
                    },
                    e.info().to_string(),
                )
            })?;
            if count > MAX_EVENTS {
                return Err((
                    loc(&span),
                    format!("document too large (more than {MAX_EVENTS} YAML nodes)"),
                ));
            }
            let here = loc(&span);
            match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err((
                            here,
                            "only one YAML document is allowed per configuration file".into(),
                        ));
                    }
                }
                Event::Scalar(ref value, ..) => {
                    index.node_start(&mut stack, &mut dups, here, Some(value.as_ref()));
                }
                Event::Alias(_) => {
                    index.node_start(&mut stack, &mut dups, here, Some("*alias"));
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err((here, format!("nesting deeper than {MAX_DEPTH} levels")));
                    }
                    let path = index.node_start(&mut stack, &mut dups, here, None);
                    stack.push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Map {
                            path,
                            pending: None,
                            seen: HashMap::new(),
                        }
                    } else {
                        Frame::Seq { path, next: 0 }
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                    // The finished collection was a key or a value of its parent mapping:
                    // advance the parent exactly as for a scalar.
                    if let Some(Frame::Map { pending, .. }) = stack.last_mut() {
                        *pending = match pending.take() {
                            None => Some(("?".to_string(), None)),
                            Some(_) => None,
                        };
                    }
                }
                _ => {}
            }
        }
        Ok((index, dups))
    }

    /// Records a node starting at `here`; `scalar` is its text for scalars and aliases, `None`
    /// for a collection. Returns the node's path. For a collection used as a mapping key the
    /// parent is advanced when the collection ends; for scalars it is advanced here.
    fn node_start(
        &mut self,
        stack: &mut [Frame],
        dups: &mut Vec<Duplicate>,
        here: Location,
        scalar: Option<&str>,
    ) -> String {
        match stack.last_mut() {
            None => {
                self.entries.insert(
                    String::new(),
                    Entry {
                        key: None,
                        value: here,
                    },
                );
                String::new()
            }
            Some(Frame::Seq { path, next }) => {
                let p = join_index(path, *next);
                *next += 1;
                self.entries.insert(
                    p.clone(),
                    Entry {
                        key: None,
                        value: here,
                    },
                );
                p
            }
            Some(Frame::Map {
                path,
                pending,
                seen,
            }) => match pending.take() {
                None => {
                    // A key.
                    match scalar {
                        Some(k) => {
                            if let Some(&first) = seen.get(k) {
                                dups.push(Duplicate {
                                    path: join(path, k),
                                    key: k.to_string(),
                                    at: here,
                                    first,
                                });
                            } else {
                                seen.insert(k.to_string(), here);
                            }
                            *pending = Some((k.to_string(), Some(here)));
                            join(path, k)
                        }
                        // A complex key: indexed nowhere; the parent advances at its end.
                        None => join(path, "?"),
                    }
                }
                Some((k, key_loc)) => {
                    let p = join(path, &k);
                    // Keep the first occurrence when a key is duplicated (errors cite both).
                    self.entries.entry(p.clone()).or_insert(Entry {
                        key: key_loc,
                        value: here,
                    });
                    if scalar.is_none() {
                        // Collection value: the parent advances when it ends (see build);
                        // put the pending key back so that End flips it to "expect key".
                        *pending = Some((k, key_loc));
                    }
                    p
                }
            },
        }
    }

    /// Position of the node at `path`, or of its nearest indexed ancestor other than the
    /// document root (a field that is absent from the file has no place: pointing at line 1
    /// would mislead).
    pub(crate) fn entry(&self, path: &str) -> Option<Entry> {
        let mut p = path;
        loop {
            if let Some(e) = self.entries.get(p) {
                return Some(*e);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
            if p.is_empty() {
                return None;
            }
        }
    }

    /// Whether `path` itself (not an ancestor) is in the document.
    pub(crate) fn has(&self, path: &str) -> bool {
        self.entries.contains_key(path)
    }

    /// Where the key naming `path` is (falls back to the value, then to ancestors).
    pub(crate) fn key(&self, path: &str) -> Option<Location> {
        self.entry(path).map(|e| e.key.unwrap_or(e.value))
    }

    /// Where the value at `path` starts (falls back to ancestors).
    pub(crate) fn value(&self, path: &str) -> Option<Location> {
        self.entry(path).map(|e| e.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(line: usize, column: usize) -> Location {
        Location { line, column }
    }

    #[test]
    fn indexes_keys_values_and_sequences() {
        let text = "a: 1\nnodes:\n  n1:\n    interfaces: { A: { device: eth1 } }\nlist:\n  - x\n  - { k: v }\n";
        let (ix, dups) = PosIndex::build(text).unwrap();
        assert!(dups.is_empty());
        assert_eq!(
            ix.entry("a"),
            Some(Entry {
                key: Some(l(1, 1)),
                value: l(1, 4)
            })
        );
        assert_eq!(ix.key("nodes.n1"), Some(l(3, 3)));
        assert_eq!(ix.key("nodes.n1.interfaces.A"), Some(l(4, 19)));
        assert_eq!(ix.value("nodes.n1.interfaces.A.device"), Some(l(4, 32)));
        assert_eq!(ix.value("list[0]"), Some(l(6, 5)));
        assert_eq!(ix.key("list[1].k"), Some(l(7, 7)));
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(ix.key("nodes.n1.interfaces.B.device"), Some(l(4, 5)));
        assert_eq!(ix.value("list[7].z"), Some(l(6, 3)));
        assert_eq!(ix.key("a"), Some(l(1, 1)));
        assert_eq!(ix.key("timing.fence_deadline"), None);
        assert_eq!(ix.value(""), Some(l(1, 1)));
        // After a nested collection value, the next key is still recognized as a key.
        let text = "x: { y: [1, 2], z: 3 }\nw: 4\n";
        let (ix, _) = PosIndex::build(text).unwrap();
        assert_eq!(ix.key("x.z"), Some(l(1, 17)));
        assert_eq!(ix.key("w"), Some(l(2, 1)));
    }

    #[test]
    fn finds_every_duplicate_key() {
        let text = "nodes:\n  n1: {}\n  n2: {}\n  n1: {}\nnetworks:\n  A: {}\n  A: {}\n";
        let (_, dups) = PosIndex::build(text).unwrap();
        assert_eq!(dups.len(), 2);
        assert_eq!(dups[0].path, "nodes.n1");
        assert_eq!((dups[0].at, dups[0].first), (l(4, 3), l(2, 3)));
        assert_eq!(dups[1].path, "networks.A");
    }

    #[test]
    fn syntax_errors_and_limits() {
        assert!(PosIndex::build("a: [1, 2\n").is_err());
        assert!(PosIndex::build("a: 1\n---\nb: 2\n")
            .unwrap_err()
            .1
            .contains("one YAML document"));
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(PosIndex::build(&deep).unwrap_err().1.contains("nesting"));
        // Complex keys do not confuse the key/value alternation.
        let (ix, _) = PosIndex::build("? [a, b]\n: 1\nc: 2\n").unwrap();
        assert_eq!(ix.key("c"), Some(l(3, 1)));
    }
}
