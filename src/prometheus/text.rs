//! The Prometheus text format (0.0.4), written by hand rather than through
//! a client library: the metrics are read from the broker at scrape time,
//! not registered and updated, and RabbitMQ's layout (`# TYPE` before
//! `# HELP`, `untyped` info metrics) is a few lines to match exactly.

use std::fmt::Write;

pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Untyped,
    Histogram,
}

/// One metric family as rabbitmq_prometheus names and describes it.
pub(crate) struct Family {
    /// Without the `rabbitmq_` (or `rabbitmq_detailed_`) prefix.
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

pub(crate) const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Counter,
        help,
    }
}

pub(crate) const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Gauge,
        help,
    }
}

pub(crate) const fn histogram(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Histogram,
        help,
    }
}

pub(crate) const fn untyped(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Untyped,
        help,
    }
}

pub(crate) struct Writer {
    out: String,
    /// `rabbitmq_`, or `rabbitmq_detailed_` for /metrics/detailed.
    prefix: &'static str,
    /// Families written: two detailed families may share one (consumers),
    /// which must appear once.
    seen: Vec<&'static str>,
}

impl Writer {
    pub(crate) fn new(prefix: &'static str) -> Writer {
        Writer {
            out: String::with_capacity(16 * 1024),
            prefix,
            seen: Vec::new(),
        }
    }

    /// A family with one sample per (labels, value).
    pub(crate) fn family<'a, V: std::fmt::Display>(
        &mut self,
        f: &Family,
        samples: impl IntoIterator<Item = (Labels<'a>, V)>,
    ) {
        if self.seen.contains(&f.name) {
            return;
        }
        self.seen.push(f.name);
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
            Kind::Histogram => "histogram",
        };
        let (p, n) = (self.prefix, f.name);
        let _ = writeln!(self.out, "# TYPE {p}{n} {kind}\n# HELP {p}{n} {}", f.help);
        for (labels, v) in samples {
            let _ = write!(self.out, "{p}{n}");
            if !labels.is_empty() {
                self.out.push('{');
                for (i, (k, val)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let _ = write!(self.out, "{k}=\"");
                    escape(&mut self.out, val);
                    self.out.push('"');
                }
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {v}");
        }
    }

    /// A histogram with one label set: per-bucket counts (not cumulative)
    /// by upper bound, the last bucket +Inf's own, and the sum.
    pub(crate) fn histogram(
        &mut self,
        f: &Family,
        labels: (&str, &str),
        bounds: &[u64],
        counts: &[u64],
        sum: u64,
    ) {
        // The family's header, with no plain samples.
        self.family::<u64>(f, []);
        let (p, n, (k, v)) = (self.prefix, f.name, labels);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            match bounds.get(i) {
                Some(b) => {
                    let _ = writeln!(self.out, "{p}{n}_bucket{{{k}=\"{v}\",le=\"{b}\"}} {seen}");
                }
                None => {
                    let _ = writeln!(self.out, "{p}{n}_bucket{{{k}=\"{v}\",le=\"+Inf\"}} {seen}");
                }
            }
        }
        let _ = writeln!(self.out, "{p}{n}_sum{{{k}=\"{v}\"}} {sum}");
        let _ = writeln!(self.out, "{p}{n}_count{{{k}=\"{v}\"}} {seen}");
    }

    /// A family with one unlabelled sample.
    pub(crate) fn single(&mut self, f: &Family, v: impl std::fmt::Display) {
        self.family(f, [(Vec::new(), v)]);
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

pub(crate) type Labels<'a> = Vec<(&'static str, &'a str)>;

/// Label values escape backslash, double quote and newline.
fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_written_as_rabbitmq_writes_them() {
        let mut w = Writer::new("rabbitmq_");
        w.single(&gauge("queues", "Queues available"), 2);
        w.family(
            &gauge("queue_messages", "Sum"),
            [(vec![("vhost", "/"), ("queue", "a\"b\\")], 3)],
        );
        assert_eq!(
            w.finish(),
            "# TYPE rabbitmq_queues gauge\n# HELP rabbitmq_queues Queues available\nrabbitmq_queues 2\n\
             # TYPE rabbitmq_queue_messages gauge\n# HELP rabbitmq_queue_messages Sum\n\
             rabbitmq_queue_messages{vhost=\"/\",queue=\"a\\\"b\\\\\"} 3\n"
        );
    }
}
