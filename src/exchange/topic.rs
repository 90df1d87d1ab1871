//! Topic routing as RabbitMQ does it, through a trie of binding-key words.
//! Keys and patterns are split on '.'; '*' matches one word, '#' zero or
//! more. The empty key (or pattern) is zero words, so '*' does not match it
//! while '#' does; "a." is the two words "a" and "".
//!
//! A publish walks only the branches its words lead to, so the cost grows
//! with the key's length and the patterns that share its words, not with
//! the number of bindings.

use super::Destination;
use std::collections::{HashMap, HashSet};

#[derive(Default)]
pub(crate) struct Trie {
    root: Node,
}

#[derive(Default)]
struct Node {
    words: HashMap<Box<str>, Node>,
    star: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    /// One entry per binding ending here (a destination may appear twice,
    /// bound with different arguments).
    dests: Vec<Destination>,
}

/// Keys longer than this many words are split onto the heap.
const STACK_WORDS: usize = 32;

thread_local! {
    /// Scratch for `Node::collect`, kept per thread so routing through `#`
    /// does not allocate per message.
    static SEEN: std::cell::RefCell<HashSet<(usize, usize)>> = Default::default();
}

/// The words of a key or pattern, RabbitMQ's way: "" has none.
fn words(s: &str) -> impl Iterator<Item = &str> {
    let none = s.is_empty();
    s.split('.').filter(move |_| !none)
}

impl Node {
    fn child(&mut self, word: &str) -> &mut Node {
        match word {
            "*" => self.star.get_or_insert_with(Box::default),
            "#" => self.hash.get_or_insert_with(Box::default),
            w => self.words.entry(w.into()).or_default(),
        }
    }

    fn is_empty(&self) -> bool {
        self.dests.is_empty() && self.words.is_empty() && self.star.is_none() && self.hash.is_none()
    }

    /// Remove one binding to `dest` along `path`; true if one was removed.
    fn remove(&mut self, path: &[&str], dest: &Destination) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return match self.dests.iter().position(|d| d.same(dest)) {
                Some(i) => {
                    self.dests.remove(i);
                    true
                }
                None => false,
            };
        };
        match *first {
            "*" => remove_boxed(&mut self.star, rest, dest),
            "#" => remove_boxed(&mut self.hash, rest, dest),
            w => {
                let Some(n) = self.words.get_mut(w) else {
                    return false;
                };
                let removed = n.remove(rest, dest);
                if n.is_empty() {
                    self.words.remove(w);
                }
                removed
            }
        }
    }

    /// Drop every binding whose destination `gone` says is gone; true if any.
    fn retain(&mut self, gone: &dyn Fn(&Destination) -> bool) -> bool {
        let before = self.dests.len();
        self.dests.retain(|d| !gone(d));
        let mut removed = self.dests.len() != before;
        self.words.retain(|_, n| {
            removed |= n.retain(gone);
            !n.is_empty()
        });
        for slot in [&mut self.star, &mut self.hash] {
            if let Some(n) = slot {
                removed |= n.retain(gone);
                if n.is_empty() {
                    *slot = None;
                }
            }
        }
        removed
    }

    /// `seen` holds the (`#` node, words left) pairs already walked: a
    /// pattern like `#.a.#.a.#` reaches the same pair along exponentially
    /// many paths, and each needs walking once (destinations are
    /// deduplicated by the caller).
    fn collect<'a>(
        &'a self,
        key: &[&str],
        out: &mut impl FnMut(&'a Destination),
        seen: &mut HashSet<(usize, usize)>,
    ) {
        let Some((first, rest)) = key.split_first() else {
            self.dests.iter().for_each(&mut *out);
            if let Some(h) = &self.hash {
                h.collect_once(key, out, seen);
            }
            return;
        };
        if let Some(n) = self.words.get(*first) {
            n.collect(rest, out, seen);
        }
        if let Some(n) = &self.star {
            n.collect(rest, out, seen);
        }
        if let Some(h) = &self.hash {
            // '#' takes zero, one, ... or all of the remaining words.
            for skip in 0..=key.len() {
                h.collect_once(&key[skip..], out, seen);
            }
        }
    }

    fn collect_once<'a>(
        &'a self,
        key: &[&str],
        out: &mut impl FnMut(&'a Destination),
        seen: &mut HashSet<(usize, usize)>,
    ) {
        if seen.insert((self as *const Node as usize, key.len())) {
            self.collect(key, out, seen);
        }
    }
}

fn remove_boxed(slot: &mut Option<Box<Node>>, rest: &[&str], dest: &Destination) -> bool {
    let Some(n) = slot else { return false };
    let removed = n.remove(rest, dest);
    if n.is_empty() {
        *slot = None;
    }
    removed
}

impl Trie {
    pub(crate) fn insert(&mut self, pattern: &str, dest: Destination) {
        let mut n = &mut self.root;
        for w in words(pattern) {
            n = n.child(w);
        }
        n.dests.push(dest);
    }

    /// Remove one binding of `dest` with this pattern; true if it existed.
    pub(crate) fn remove(&mut self, pattern: &str, dest: &Destination) -> bool {
        let path: Vec<&str> = words(pattern).collect();
        self.root.remove(&path, dest)
    }

    /// Remove every binding to a destination `gone` selects.
    pub(crate) fn retain(&mut self, gone: &dyn Fn(&Destination) -> bool) -> bool {
        self.root.retain(gone)
    }

    /// Every destination a binding matching `key` leads to (a destination
    /// bound by several matching patterns comes once per pattern).
    pub(crate) fn route<'a>(&'a self, key: &str, mut out: impl FnMut(&'a Destination)) {
        SEEN.with(|seen| {
            let mut seen = seen.borrow_mut();
            let mut stack: [&str; STACK_WORDS] = [""; STACK_WORDS];
            let mut n = 0;
            let mut heap: Vec<&str> = Vec::new();
            for w in words(key) {
                if n == STACK_WORDS {
                    heap = words(key).collect();
                    break;
                }
                stack[n] = w;
                n += 1;
            }
            let key = if heap.is_empty() {
                &stack[..n]
            } else {
                &heap[..]
            };
            self.root.collect(key, &mut out, &mut seen);
            seen.clear();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Queue;
    use amq_protocol::types::FieldTable;
    use proptest::prelude::*;
    use std::sync::Arc;

    /// The reference: RabbitMQ's rule written as plainly as it reads.
    fn reference(pattern: &[&str], key: &[&str]) -> bool {
        match (pattern.split_first(), key.split_first()) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some((&"#", p)), _) => (0..=key.len()).any(|i| reference(p, &key[i..])),
            (Some(_), None) => false,
            (Some((&"*", p)), Some((_, k))) => reference(p, k),
            (Some((w, p)), Some((kw, k))) => w == kw && reference(p, k),
        }
    }

    fn matches(pattern: &str, key: &str) -> bool {
        let p: Vec<&str> = words(pattern).collect();
        let k: Vec<&str> = words(key).collect();
        reference(&p, &k)
    }

    fn queue(name: &str) -> Arc<Queue> {
        Queue::new(name.into(), false, None, false, FieldTable::default())
    }

    fn routed(t: &Trie, key: &str) -> Vec<String> {
        let mut v = Vec::new();
        t.route(key, |d| {
            if let Destination::Queue(q) = d
                && !v.contains(&q.name.to_string())
            {
                v.push(q.name.to_string());
            }
        });
        v.sort();
        v
    }

    #[test]
    fn rabbitmq_topic_semantics() {
        let cases = [
            ("a.b.c", "a.b.c", true),
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a.c", false),
            ("a.#", "a", true),
            ("a.#", "a.b.c", true),
            ("#", "", true),
            ("#", "a.b", true),
            ("*", "", false),
            ("*", ".", false),
            ("*", "a.b", false),
            ("*.#", "", false),
            ("*.#", ".", true),
            ("#.#", "", true),
            ("#.c", "a.b.c", true),
            ("#.c", "c", true),
            ("#.c", "a.c.d", false),
            ("a.#.d", "a.b.c.d", true),
            ("a.#.d", "a.d", true),
            ("a.#.#.d", "a.d", true),
            ("#.a.#", "a", true),
            ("#.a.#", "b.a.c", true),
            ("#.a.#", "b.c", false),
            ("*.*", "a", false),
            ("*.*", ".", true),
            ("#.*", "a", true),
            ("a.b", "a.b.", false),
            ("a.*", "a.", true),
            ("*.a", ".a", true),
            ("a.*.b", "a..b", true),
            ("", "", true),
            ("", "a", false),
            ("a.*.#", "a", false),
            ("a.*.#", "a.b", true),
        ];
        for (p, k, want) in cases {
            assert_eq!(matches(p, k), want, "reference: pattern {p:?} key {k:?}");
            let mut t = Trie::default();
            t.insert(p, Destination::Queue(queue("q")));
            assert_eq!(
                !routed(&t, k).is_empty(),
                want,
                "trie: pattern {p:?} key {k:?}"
            );
        }
    }

    #[test]
    fn removing_a_binding_prunes_it_and_keeps_the_others() {
        let (a, b) = (queue("a"), queue("b"));
        let mut t = Trie::default();
        t.insert("x.*", Destination::Queue(a.clone()));
        t.insert("x.*", Destination::Queue(b.clone()));
        t.insert("x.#", Destination::Queue(a.clone()));
        assert_eq!(routed(&t, "x.y"), ["a", "b"]);
        assert!(t.remove("x.*", &Destination::Queue(a.clone())));
        assert!(!t.remove("x.*", &Destination::Queue(a.clone())));
        assert_eq!(routed(&t, "x.y"), ["a", "b"]);
        assert!(t.retain(&|d| matches!(d, Destination::Queue(q) if Arc::ptr_eq(q, &a))));
        assert_eq!(routed(&t, "x.y"), ["b"]);
        assert!(t.remove("x.*", &Destination::Queue(b)));
        assert!(t.root.is_empty());
    }

    /// Patterns of many '#' against a long key: each (node, position) is
    /// walked once, so this returns at once instead of in exponential time.
    #[test]
    fn many_hashes_against_a_long_key_route_in_polynomial_time() {
        let mut t = Trie::default();
        let p = vec!["#.a"; 60].join(".") + ".#";
        t.insert(&p, Destination::Queue(queue("deep")));
        t.insert(
            &vec!["#"; 120].join("."),
            Destination::Queue(queue("hashes")),
        );
        let key = vec!["a"; 120].join(".");
        assert_eq!(routed(&t, &key), ["deep", "hashes"]);
        let miss = vec!["a"; 59].join(".");
        assert_eq!(routed(&t, &miss), ["hashes"]);
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("a".to_string()),
            Just("b".to_string()),
            Just("ab".to_string()),
        ]
    }

    fn pattern_word() -> impl Strategy<Value = String> {
        prop_oneof![word(), Just("*".to_string()), Just("#".to_string())]
    }

    fn join(ws: Vec<String>) -> String {
        ws.join(".")
    }

    proptest! {
        #[test]
        fn trie_agrees_with_the_reference(
            patterns in prop::collection::vec(prop::collection::vec(pattern_word(), 0..5).prop_map(join), 1..12),
            keys in prop::collection::vec(prop::collection::vec(word(), 0..6).prop_map(join), 1..12),
        ) {
            let mut t = Trie::default();
            let qs: Vec<Arc<Queue>> = (0..patterns.len()).map(|i| queue(&format!("q{i:02}"))).collect();
            for (p, q) in patterns.iter().zip(&qs) {
                t.insert(p, Destination::Queue(q.clone()));
            }
            for k in &keys {
                let mut want: Vec<String> = patterns
                    .iter()
                    .zip(&qs)
                    .filter(|(p, _)| matches(p, k))
                    .map(|(_, q)| q.name.to_string())
                    .collect();
                want.sort();
                prop_assert_eq!(routed(&t, k), want, "key {:?} patterns {:?}", k, patterns);
            }
        }
    }
}
