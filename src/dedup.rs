//! Message deduplication, as the RabbitMQ message-deduplication plugin and
//! LavinMQ define it. A message carrying a deduplication header (by default
//! `x-deduplication-header`) is dropped when its value is a duplicate:
//!
//! - **window** (exchanges, and queues given `x-cache-size` or `x-cache-ttl`):
//!   the value was seen among the last `x-cache-size` values (oldest out
//!   first) and has not outlived its TTL (`x-cache-ttl`, or the message's own
//!   `x-cache-ttl` header);
//! - **present** (queues without either): a message with that value is still
//!   in the queue, ready or unacknowledged, as the plugin's queues do.
//!
//! Messages without the header are never duplicates.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable};
use std::collections::{HashMap, VecDeque};

/// The header whose value identifies a message, unless
/// `x-deduplication-header` names another.
pub const DEFAULT_HEADER: &str = "x-deduplication-header";
/// LavinMQ's cache size when none is given.
pub const DEFAULT_CACHE_SIZE: u64 = 128;

/// Deduplication settings from a queue's or exchange's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupArgs {
    pub cache_size: Option<u64>,
    /// ms a value is remembered (None: until evicted).
    pub cache_ttl: Option<u64>,
    pub header: String,
}

/// A deduplication key: the header value in a canonical encoding, so that
/// the same value sent as a short or long string (or any integer width)
/// counts as the same.
pub type Key = Box<[u8]>;

impl DedupArgs {
    /// The settings if deduplication is enabled: `x-message-deduplication`
    /// true, or `always` (the plugin's exchange type). Bad values are
    /// refused in LavinMQ's words.
    pub fn parse(args: &FieldTable, always: bool) -> Result<Option<DedupArgs>, String> {
        let a = args.inner();
        let enabled = match a.get("x-message-deduplication") {
            None => false,
            Some(AMQPValue::Boolean(b)) => *b,
            Some(_) => return Err("x-message-deduplication header not a boolean".into()),
        };
        let cache_size = count(a.get("x-cache-size"), "x-cache-size")?;
        let cache_ttl = count(a.get("x-cache-ttl"), "x-cache-ttl")?;
        let header = match a.get("x-deduplication-header") {
            None => DEFAULT_HEADER.to_string(),
            Some(v) => match crate::field::text(v) {
                Some(t) => String::from_utf8_lossy(t).into_owned(),
                None => return Err("x-deduplication-header header not a string".into()),
            },
        };
        Ok((enabled || always).then_some(DedupArgs {
            cache_size,
            cache_ttl,
            header,
        }))
    }

    /// The key of a message, if it carries the header.
    pub fn key_of(&self, props: &BasicProperties) -> Option<Key> {
        let v = props
            .headers()
            .as_ref()?
            .inner()
            .get(self.header.as_str())?;
        Some(key(v))
    }

    /// Whether these settings ask for a window rather than presence.
    pub fn windowed(&self) -> bool {
        self.cache_size.is_some() || self.cache_ttl.is_some()
    }

    pub fn window(&self) -> Window {
        Window::new(
            self.cache_size.unwrap_or(DEFAULT_CACHE_SIZE),
            self.cache_ttl,
        )
    }
}

/// A non-negative integer argument; a numeric string is taken too, as the
/// plugin does.
fn count(v: Option<&AMQPValue>, name: &str) -> Result<Option<u64>, String> {
    let Some(v) = v else { return Ok(None) };
    let n = crate::field::int(v).or_else(|| {
        std::str::from_utf8(crate::field::text(v)?)
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    match n {
        Some(n) if n >= 0 => Ok(Some(n as u64)),
        Some(_) => Err(format!("{name} header less than minimum value 0")),
        None => Err(format!("{name} header not an integer")),
    }
}

fn key(v: &AMQPValue) -> Key {
    if let Some(t) = crate::field::text(v) {
        let mut k = Vec::with_capacity(t.len() + 1);
        k.push(b's');
        k.extend_from_slice(t);
        return k.into();
    }
    if let Some(i) = crate::field::int(v) {
        return format!("i{i}").into_bytes().into();
    }
    format!("v{v:?}").into_bytes().into()
}

/// The message's own `x-cache-ttl` header, which overrides the default.
fn own_ttl(props: &BasicProperties) -> Option<u64> {
    let v = props.headers().as_ref()?.inner().get("x-cache-ttl")?;
    crate::field::int(v).and_then(|n| u64::try_from(n).ok())
}

/// The last `size` keys seen, each until its TTL runs out.
pub struct Window {
    size: usize,
    ttl: Option<u64>,
    /// key → (insertion number, expiry ms or 0 for never).
    seen: HashMap<Key, (u64, u64)>,
    /// Insertion order for eviction; entries whose number no longer matches
    /// `seen` are stale and skipped.
    order: VecDeque<(u64, Key)>,
    next: u64,
}

impl Window {
    pub fn new(size: u64, ttl: Option<u64>) -> Window {
        Window {
            size: usize::try_from(size).unwrap_or(usize::MAX),
            ttl,
            seen: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
        }
    }

    /// True if `key` was seen and is still remembered at `now`.
    pub fn contains(&self, key: &Key, now: u64) -> bool {
        self.seen
            .get(key)
            .is_some_and(|&(_, exp)| exp == 0 || exp > now)
    }

    /// Remember `key` from `now` (for the message's TTL if it names one).
    pub fn insert(&mut self, key: Key, props: &BasicProperties, now: u64) {
        if self.size == 0 {
            return;
        }
        let ttl = own_ttl(props).or(self.ttl);
        let exp = ttl.map_or(0, |t| now.saturating_add(t).max(1));
        // An expired entry of the same key gives way to the new one.
        self.seen.remove(&key);
        while self.seen.len() >= self.size {
            let Some((n, k)) = self.order.pop_front() else {
                break;
            };
            if self.seen.get(&k).is_some_and(|&(m, _)| m == n) {
                self.seen.remove(&k);
            }
        }
        let n = self.next;
        self.next += 1;
        self.seen.insert(key.clone(), (n, exp));
        self.order.push_back((n, key));
        if self.order.len() > 2 * self.seen.len() + 16 {
            let seen = &self.seen;
            self.order
                .retain(|(n, k)| seen.get(k).is_some_and(|&(m, _)| m == *n));
        }
    }

    /// Check and remember in one step: true if the message is new.
    pub fn admit(&mut self, key: Key, props: &BasicProperties, now: u64) -> bool {
        if self.contains(&key, now) {
            return false;
        }
        self.insert(key, props, now);
        true
    }
}

/// The keys of the messages a queue holds (ready or unacknowledged).
#[derive(Default)]
pub struct Present {
    by_key: HashMap<Key, u64>,
    by_seq: HashMap<u64, Key>,
}

impl Present {
    pub fn contains(&self, key: &Key) -> bool {
        self.by_key.contains_key(key)
    }

    pub fn insert(&mut self, key: Key, seq: u64) {
        self.by_key.insert(key.clone(), seq);
        self.by_seq.insert(seq, key);
    }

    /// Message `seq` left the queue for good.
    pub fn remove(&mut self, seq: u64) {
        if let Some(k) = self.by_seq.remove(&seq) {
            self.by_key.remove(&k);
        }
    }
}

/// A queue's deduplication state.
pub enum QueueDedup {
    Window(Window),
    Present(Present),
}

impl QueueDedup {
    pub fn new(args: &DedupArgs) -> QueueDedup {
        if args.windowed() {
            QueueDedup::Window(args.window())
        } else {
            QueueDedup::Present(Present::default())
        }
    }

    pub fn is_duplicate(&self, key: &Key, now: u64) -> bool {
        match self {
            QueueDedup::Window(w) => w.contains(key, now),
            QueueDedup::Present(p) => p.contains(key),
        }
    }

    /// Message `seq` carrying `key` was enqueued.
    pub fn record(&mut self, key: Key, seq: u64, props: &BasicProperties, now: u64) {
        match self {
            QueueDedup::Window(w) => w.insert(key, props, now),
            QueueDedup::Present(p) => p.insert(key, seq),
        }
    }

    /// Message `seq` left the queue for good.
    pub fn forget(&mut self, seq: u64) {
        if let QueueDedup::Present(p) = self {
            p.remove(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(id: &str, ttl: Option<i64>) -> BasicProperties {
        let mut h = FieldTable::default();
        h.insert(DEFAULT_HEADER.into(), AMQPValue::LongString(id.into()));
        if let Some(t) = ttl {
            h.insert("x-cache-ttl".into(), AMQPValue::LongLongInt(t));
        }
        BasicProperties::default().with_headers(h)
    }

    fn args(t: &[(&str, AMQPValue)]) -> FieldTable {
        let mut f = FieldTable::default();
        for (k, v) in t {
            f.insert((*k).into(), v.clone());
        }
        f
    }

    #[test]
    fn disabled_unless_asked() {
        assert_eq!(DedupArgs::parse(&FieldTable::default(), false), Ok(None));
        let a = DedupArgs::parse(&FieldTable::default(), true)
            .expect("ok")
            .expect("on");
        assert_eq!(a.header, DEFAULT_HEADER);
        assert!(!a.windowed());
    }

    #[test]
    fn bad_arguments_are_refused() {
        let e = DedupArgs::parse(
            &args(&[("x-cache-size", AMQPValue::LongString("many".into()))]),
            true,
        );
        assert_eq!(e, Err("x-cache-size header not an integer".into()));
        let e = DedupArgs::parse(&args(&[("x-cache-ttl", AMQPValue::LongInt(-1))]), true);
        assert_eq!(
            e,
            Err("x-cache-ttl header less than minimum value 0".into())
        );
        let e = DedupArgs::parse(
            &args(&[("x-message-deduplication", AMQPValue::LongInt(1))]),
            false,
        );
        assert!(e.is_err());
    }

    #[test]
    fn same_value_in_any_string_width_is_one_key() {
        let a = key(&AMQPValue::LongString("k".into()));
        let b = key(&AMQPValue::ShortString("k".into()));
        assert_eq!(a, b);
        assert_ne!(a, key(&AMQPValue::LongInt(1)));
    }

    #[test]
    fn window_evicts_oldest_first() {
        let mut w = Window::new(2, None);
        let p = props("x", None);
        for k in ["a", "b", "c"] {
            assert!(w.admit(key(&AMQPValue::LongString(k.into())), &p, 0));
        }
        assert!(w.admit(key(&AMQPValue::LongString("a".into())), &p, 0));
        assert!(!w.admit(key(&AMQPValue::LongString("c".into())), &p, 0));
    }

    #[test]
    fn window_forgets_after_ttl_and_message_ttl_wins() {
        let mut w = Window::new(10, Some(100));
        let k = key(&AMQPValue::LongString("a".into()));
        assert!(w.admit(k.clone(), &props("a", None), 1000));
        assert!(!w.admit(k.clone(), &props("a", None), 1099));
        assert!(w.admit(k.clone(), &props("a", Some(500)), 1100));
        assert!(!w.admit(k.clone(), &props("a", None), 1599));
        assert!(w.admit(k, &props("a", None), 1600));
    }

    #[test]
    fn window_order_stays_bounded_under_reinsertion() {
        let mut w = Window::new(4, Some(1));
        let k = key(&AMQPValue::LongString("a".into()));
        for now in 0..1000 {
            w.admit(k.clone(), &props("a", None), now * 2);
        }
        assert!(w.order.len() <= 2 * w.seen.len() + 16);
    }

    #[test]
    fn present_until_forgotten() {
        let mut d = QueueDedup::new(&DedupArgs {
            cache_size: None,
            cache_ttl: None,
            header: DEFAULT_HEADER.into(),
        });
        let k = key(&AMQPValue::LongString("a".into()));
        assert!(!d.is_duplicate(&k, 0));
        d.record(k.clone(), 7, &props("a", None), 0);
        assert!(d.is_duplicate(&k, 0));
        d.forget(7);
        assert!(!d.is_duplicate(&k, 0));
    }
}
