//! Three network namespaces on a bridge, for partition tests (as root,
//! with iproute2): each node in its own, 10.213.N.1-3/24.
#![allow(dead_code)]

use std::process::Command;

pub fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// Three namespaces on a bridge, 10.213.N.1-3/24; gone on drop.
pub struct Net {
    tag: String,
    subnet: String,
}

impl Net {
    pub fn new() -> Option<Net> {
        let pid = std::process::id();
        let net = Net {
            tag: format!("fq{}", pid % 100_000),
            subnet: format!("10.213.{}", pid % 250),
        };
        let br = net.bridge();
        let ok = ip(&["link", "add", &br, "type", "bridge"]) && ip(&["link", "set", &br, "up"]);
        if !ok {
            return None;
        }
        for i in 1..=3 {
            let ns = net.ns(i);
            let (outer, inner) = (net.veth(i), format!("{}i{i}", net.tag));
            let addr = format!("{}.{i}/24", net.subnet);
            let ok = ip(&["netns", "add", &ns])
                && ip(&[
                    "link", "add", &outer, "type", "veth", "peer", "name", &inner,
                ])
                && ip(&["link", "set", &inner, "netns", &ns])
                && ip(&["link", "set", &outer, "master", &br])
                && ip(&["link", "set", &outer, "up"])
                && ip(&[
                    "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &inner,
                ])
                && ip(&["netns", "exec", &ns, "ip", "link", "set", &inner, "up"])
                && ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
            if !ok {
                return None;
            }
        }
        Some(net)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    pub fn ns(&self, i: usize) -> String {
        format!("{}ns{i}", self.tag)
    }

    fn veth(&self, i: usize) -> String {
        format!("{}o{i}", self.tag)
    }

    pub fn addr(&self, i: usize) -> String {
        format!("{}.{i}:25672", self.subnet)
    }

    /// Cut node i off from the others (its side of the bridge down).
    pub fn cut(&self, i: usize, off: bool) {
        assert!(ip(&[
            "link",
            "set",
            &self.veth(i),
            if off { "down" } else { "up" }
        ]));
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 1..=3 {
            ip(&["netns", "del", &self.ns(i)]);
            ip(&["link", "del", &self.veth(i)]);
        }
        ip(&["link", "del", &self.bridge()]);
    }
}

impl Net {
    /// The namespaces, or None (and the test skipped) where they cannot be
    /// made; under CI they must be.
    pub fn needed() -> Option<Net> {
        let net = Net::new();
        if net.is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "network namespaces are needed under CI (run as root with iproute2)"
            );
            eprintln!("skipped: no network namespaces here (needs root and iproute2)");
        }
        net
    }

    /// Node i's address in its namespace.
    pub fn ip_of(&self, i: usize) -> String {
        format!("{}.{i}", self.subnet)
    }

    /// Give the host an address on the bridge, so that the test reaches
    /// the nodes' AMQP and HTTP listeners on their namespaces' addresses.
    pub fn reach_from_host(&self) -> bool {
        let addr = format!("{}.254/24", self.subnet);
        ip(&["addr", "add", &addr, "dev", &self.bridge()])
    }

    /// Cut node i off from the other nodes (not from the host): each side
    /// sends what is for the other into a blackhole (`tc`: an htb class
    /// holding a blackhole qdisc, picked by destination; this kernel has no
    /// drop action or prio qdisc).
    pub fn isolate(&self, i: usize, on: bool) {
        for j in 1..=3 {
            let dev = format!("{}i{j}", self.tag);
            let ns = self.ns(j);
            let exec = |args: &[&str]| {
                let mut all = vec!["netns", "exec", ns.as_str(), "tc"];
                all.extend_from_slice(args);
                ip(&all)
            };
            if !on {
                exec(&["qdisc", "del", "dev", &dev, "root"]);
                continue;
            }
            let peers: Vec<usize> = if j == i {
                (1..=3).filter(|k| *k != i).collect()
            } else {
                vec![i]
            };
            assert!(exec(&[
                "qdisc", "add", "dev", &dev, "root", "handle", "1:", "htb", "default", "1"
            ]));
            assert!(exec(&[
                "class", "add", "dev", &dev, "parent", "1:", "classid", "1:1", "htb", "rate",
                "10gbit"
            ]));
            assert!(exec(&[
                "class", "add", "dev", &dev, "parent", "1:", "classid", "1:2", "htb", "rate",
                "8bit"
            ]));
            assert!(exec(&[
                "qdisc",
                "add",
                "dev",
                &dev,
                "parent",
                "1:2",
                "handle",
                "20:",
                "blackhole"
            ]));
            for k in peers {
                let dst = format!("{}/32", self.ip_of(k));
                assert!(exec(&[
                    "filter", "add", "dev", &dev, "parent", "1:", "protocol", "ip", "prio", "1",
                    "u32", "match", "ip", "dst", &dst, "flowid", "1:2",
                ]));
            }
        }
    }
}
