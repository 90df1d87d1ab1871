//! Topic matching exactly as RabbitMQ does it: keys and patterns are split on
//! '.', '*' matches one word, '#' matches zero or more words. An empty key is
//! one empty word.

pub fn matches(pattern: &str, key: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    match_words(&p, &k)
}

fn match_words(p: &[&str], k: &[&str]) -> bool {
    // Iterative with backtracking to the last '#', linear in practice.
    let (mut pi, mut ki) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() && p[pi] == "#" {
            // Collapse runs of '#'.
            while pi < p.len() && p[pi] == "#" {
                pi += 1;
            }
            star = Some((pi, ki));
            continue;
        }
        if ki == k.len() {
            if pi == p.len() {
                return true;
            }
        } else if pi < p.len() && (p[pi] == "*" || p[pi] == k[ki]) {
            pi += 1;
            ki += 1;
            continue;
        }
        match star {
            Some((sp, sk)) if sk < k.len() => {
                star = Some((sp, sk + 1));
                pi = sp;
                ki = sk + 1;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

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
            ("*", "", true),
            ("*", "a.b", false),
            ("#.c", "a.b.c", true),
            ("#.c", "c", true),
            ("#.c", "a.c.d", false),
            ("a.#.d", "a.b.c.d", true),
            ("a.#.d", "a.d", true),
            ("a.#.#.d", "a.d", true),
            ("*.#", "", true),
            ("*.*", "a", false),
            ("#.*", "a", true),
            ("#.*.#", "", true),
            ("a.b", "a.b.", false),
            ("", "", true),
            ("", "a", false),
            ("a.*.#", "a", false),
            ("a.*.#", "a.b", true),
        ];
        for (p, k, want) in cases {
            assert_eq!(matches(p, k), want, "pattern {p:?} key {k:?}");
        }
    }
}
