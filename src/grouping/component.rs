//! The grouping component tree and the hash computed over it.
//!
//! A component is a node with an id (`exception`, `frame`, `function`, ...), a contributes
//! flag and a list of children, which are either string leaves or nested components. Only
//! leaves whose every ancestor contributes feed the hash; non-contributing nodes stay in the
//! tree so the "why was this grouped" view can show what was ignored and why.

use std::borrow::Cow;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// One node of the grouping tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    pub id: Cow<'static, str>,
    pub contributes: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<Cow<'static, str>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<ComponentValue>,
}

/// A child of a [`Component`]: a hashed string leaf or a nested component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ComponentValue {
    Value(String),
    Component(Component),
}

impl Component {
    /// A contributing node with no children yet.
    pub fn new(id: &'static str) -> Self {
        Component {
            id: Cow::Borrowed(id),
            contributes: true,
            hint: None,
            values: Vec::new(),
        }
    }

    /// A contributing node with one string leaf.
    pub fn leaf(id: &'static str, value: impl Into<String>) -> Self {
        // Exact capacity: a pushed-to empty Vec would reserve four slots per leaf.
        Component {
            values: vec![ComponentValue::Value(value.into())],
            ..Component::new(id)
        }
    }

    pub fn push(&mut self, child: Component) {
        self.values.push(ComponentValue::Component(child));
    }

    /// Marks the node non-contributing, keeping the first hint given: the first reason a
    /// node was dropped is the one a user needs to see.
    pub fn ignore(&mut self, hint: &'static str) {
        self.ignore_with(Cow::Borrowed(hint));
    }

    pub(crate) fn ignore_with(&mut self, hint: Cow<'static, str>) {
        if self.contributes {
            self.contributes = false;
            self.hint = Some(hint);
        }
    }

    /// Recomputes `contributes` of a container from its children: a node whose children all
    /// dropped out has nothing left to hash.
    pub(crate) fn contributes_if_any_child(&mut self, hint: &'static str) {
        if self.contributes && !self.values.iter().any(value_contributes) {
            self.ignore(hint);
        }
    }

    pub fn children(&self) -> impl Iterator<Item = &Component> {
        self.values.iter().filter_map(|v| match v {
            ComponentValue::Component(c) => Some(c),
            ComponentValue::Value(_) => None,
        })
    }

    /// Finds the first descendant (or self) with `id` that contributes.
    pub fn find_contributing(&self, id: &str) -> Option<&Component> {
        if !self.contributes {
            return None;
        }
        if self.id == id {
            return Some(self);
        }
        self.children().find_map(|c| c.find_contributing(id))
    }

    /// Calls `f(parent_id, value)` for every leaf that reaches the hash, depth first.
    pub fn visit_contributing(&self, f: &mut impl FnMut(&str, &str)) {
        if !self.contributes {
            return;
        }
        for v in &self.values {
            match v {
                ComponentValue::Value(s) => f(&self.id, s),
                ComponentValue::Component(c) => c.visit_contributing(f),
            }
        }
    }

    /// The contributing leaf values, flattened, as shown to users and used by hybrid fingerprints.
    pub fn contributing_values(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.visit_contributing(&mut |_, v| out.push(v.to_owned()));
        out
    }

    /// md5 over the contributing leaves, or `None` when nothing contributes.
    pub fn hash(&self) -> Option<String> {
        let mut h = ValueHasher::new();
        self.feed(&mut h);
        h.finish_nonempty()
    }

    pub(crate) fn feed(&self, h: &mut ValueHasher) {
        self.visit_contributing(&mut |id, v| h.tagged(id, v));
    }
}

fn value_contributes(v: &ComponentValue) -> bool {
    match v {
        ComponentValue::Value(_) => true,
        ComponentValue::Component(c) => c.contributes,
    }
}

/// md5 over an unambiguous encoding of tagged values.
///
/// Sentry concatenates values with no separator, so `["ab","c"]` and `["a","bc"]` collide; we
/// are not byte-compatible with Sentry's hashes anyway, so each value is written as
/// `tag:len:value`. The tag (the id of the component holding the value) keeps a message
/// "KeyError" apart from an exception type "KeyError". Variant names are deliberately not
/// part of the encoding: an app hash over the same frames as a system hash must be equal, so
/// an event whose in_app flags changed still finds its issue.
pub(crate) struct ValueHasher {
    md5: Md5,
    count: usize,
}

impl ValueHasher {
    pub fn new() -> Self {
        ValueHasher {
            md5: Md5::new(),
            count: 0,
        }
    }

    pub fn tagged(&mut self, tag: &str, value: &str) {
        let mut buf = [0u8; 20];
        self.md5.update(tag.as_bytes());
        self.md5.update(b":");
        self.md5.update(decimal(value.len(), &mut buf));
        self.md5.update(b":");
        self.md5.update(value.as_bytes());
        self.count += 1;
    }

    pub fn finish(self) -> String {
        to_hex(&self.md5.finalize())
    }

    pub fn finish_nonempty(self) -> Option<String> {
        if self.count == 0 {
            None
        } else {
            Some(self.finish())
        }
    }
}

fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// md5 of nothing: the shared hash of events that have nothing to group by.
pub(crate) fn empty_hash() -> String {
    ValueHasher::new().finish()
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Plain md5 hex of a string, for legacy checksums that are not already a hash.
pub(crate) fn md5_hex(s: &str) -> String {
    to_hex(&Md5::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_hash_is_md5_of_nothing() {
        assert_eq!(empty_hash(), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn encoding_is_unambiguous() {
        let mut a = Component::new("x");
        a.push(Component::leaf("v", "ab"));
        a.push(Component::leaf("v", "c"));
        let mut b = Component::new("x");
        b.push(Component::leaf("v", "a"));
        b.push(Component::leaf("v", "bc"));
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn non_contributing_leaves_are_not_hashed() {
        let mut a = Component::new("x");
        a.push(Component::leaf("v", "a"));
        let mut b = a.clone();
        let mut extra = Component::leaf("v", "b");
        extra.ignore("because");
        b.push(extra);
        assert_eq!(a.hash(), b.hash());
        let mut none = Component::new("x");
        none.push(Component::new("y"));
        assert_eq!(none.hash(), None);
    }

    #[test]
    fn serde_round_trip() {
        let mut a = Component::new("frame");
        a.push(Component::leaf("function", "f"));
        let mut m = Component::leaf("module", "m");
        m.ignore("hint");
        a.push(m);
        let json = serde_json::to_string(&a).unwrap();
        let back: Component = serde_json::from_str(&json).unwrap();
        assert_eq!(a, back);
    }
}
