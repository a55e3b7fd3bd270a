//! Minibatches for stochastic training: each epoch visits the sequences in a fresh random order,
//! `batch_size` at a time; a last batch smaller than `batch_size` is dropped (the order is drawn
//! again), so every step sees the same number of sequences.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::Instance;

pub(super) struct Batches {
    size: usize,
    order: Vec<usize>,
    next: usize,
    rng: ChaCha8Rng,
}

impl Batches {
    /// `None` for full-batch training (no `batch_size`, or one of at least `n`).
    pub fn new(batch_size: Option<usize>, n: usize, seed: u64) -> Option<Batches> {
        let size = batch_size.filter(|&b| b < n)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Stream 0 draws the initialization; the batches have their own.
        rng.set_stream(1);
        Some(Batches {
            size,
            order: (0..n).collect(),
            next: n,
            rng,
        })
    }

    /// The next minibatch of `inst`.
    pub fn draw(&mut self, inst: &Instance) -> Instance {
        if self.next + self.size > self.order.len() {
            self.order.shuffle(&mut self.rng);
            self.next = 0;
        }
        let ids = &self.order[self.next..self.next + self.size];
        self.next += self.size;
        inst.subset(ids)
    }
}
