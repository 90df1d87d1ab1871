//! What the chaos tests share: a schedule a seed replays, and its knobs.
#![allow(dead_code)]

/// xorshift64*: a schedule that a seed replays, without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// How long the schedule runs (`FERRETMQ_CHAOS_SECONDS`, default 15) and
/// its seed (`FERRETMQ_CHAOS_SEED`, else drawn and printed).
pub fn schedule() -> (u64, u64) {
    let seconds = env_u64("FERRETMQ_CHAOS_SECONDS").unwrap_or(15);
    let seed = env_u64("FERRETMQ_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1
    });
    println!("chaos seed {seed} (FERRETMQ_CHAOS_SEED={seed} replays it), {seconds} s");
    (seconds, seed)
}
