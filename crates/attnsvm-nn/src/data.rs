//! The classification data of the primal-dual experiments (spec `primal-dual.md` §4.2), read from
//! the `.npy` files shipped in the repository's `data/` folder (`data/README.md`: provenance,
//! licenses, conversion), and batched into burn tensors.
//!
//! - **digits**: 1797 images 8×8, grey levels scaled to `[0, 1]`, cut into `p×p` patches (one token
//!   per patch, `p²` features; `p = 1` gives 64 pixel tokens), 10 classes. No padding.
//! - **JapaneseVowels**: 12 channels, 7 to 29 steps zero-padded to 29 (the padding mask comes from
//!   the stored lengths), 9 classes, the archive's 270/370 split.
//! - **retrieval** (generated, spec §4.2 "LRA-lite retrieval"): do the two halves of a long
//!   sequence hide the same motif? See [`Dataset::retrieval`].

use std::path::{Path, PathBuf};

use attnsvm::data::npy::{read_f64, read_i64};
use attnsvm::{Error, Result};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Noise symbols of the retrieval task.
pub const NOISE: usize = 8;
/// Marker symbols of the retrieval task (motifs are made of them).
pub const MARKERS: usize = 3;
/// Tokens per motif.
pub const MOTIF_LEN: usize = 3;
/// The retrieval task's motifs: four orderings of the three markers.
pub const MOTIFS: [[usize; MOTIF_LEN]; 4] = [[0, 1, 2], [2, 1, 0], [1, 0, 2], [0, 2, 1]];

/// The repository's `data/` folder (the default of every loader).
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

/// Sequences of tokens with their lengths and labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// `n × len × features`, row-major.
    pub x: Vec<f32>,
    /// Valid tokens per sequence (the rest is padding).
    pub lengths: Vec<usize>,
    pub y: Vec<i64>,
    pub len: usize,
    pub features: usize,
    pub classes: usize,
}

fn invalid(msg: String) -> Error {
    Error::Invalid(msg)
}

impl Dataset {
    pub fn n(&self) -> usize {
        self.y.len()
    }

    /// The 8×8 digits as `(8/p)²` tokens of `p²` pixels (`p` divides 8).
    pub fn digits(dir: &Path, patch: usize) -> Result<Dataset> {
        if !matches!(patch, 1 | 2 | 4 | 8) {
            return Err(invalid(format!("digits: patch size {patch} must divide 8")));
        }
        let x = read_f64(&dir.join("digits/X.npy"))?;
        let y = read_i64(&dir.join("digits/y.npy"))?;
        if x.shape != [1797, 8, 8] || y.shape != [1797] {
            return Err(invalid(format!(
                "digits: shapes {:?} and {:?}, expected [1797, 8, 8] and [1797]",
                x.shape, y.shape
            )));
        }
        let g = 8 / patch;
        let mut out = Vec::with_capacity(x.data.len());
        for img in x.data.chunks_exact(64) {
            for (pr, pc) in (0..g).flat_map(|r| (0..g).map(move |c| (r, c))) {
                for (r, c) in (0..patch).flat_map(|r| (0..patch).map(move |c| (r, c))) {
                    out.push((img[(pr * patch + r) * 8 + pc * patch + c] / 16.0) as f32);
                }
            }
        }
        Ok(Dataset {
            x: out,
            lengths: vec![g * g; 1797],
            y: y.data,
            len: g * g,
            features: patch * patch,
            classes: 10,
        })
    }

    /// JapaneseVowels, `split` = `train` or `test`.
    pub fn japanese_vowels(dir: &Path, split: &str) -> Result<Dataset> {
        if split != "train" && split != "test" {
            return Err(invalid(format!(
                "JapaneseVowels: split {split:?} is not train or test"
            )));
        }
        let base = dir.join("japanese_vowels");
        let x = read_f64(&base.join(format!("X_{split}.npy")))?;
        let len = read_i64(&base.join(format!("len_{split}.npy")))?;
        let y = read_i64(&base.join(format!("y_{split}.npy")))?;
        let n = y.data.len();
        if x.shape != [n, 29, 12] || len.shape != [n] {
            return Err(invalid(format!(
                "JapaneseVowels {split}: shapes {:?}, {:?}, {:?} do not match (n, 29, 12), (n,), (n,)",
                x.shape, len.shape, y.shape
            )));
        }
        let lengths = len
            .data
            .iter()
            .map(|&l| usize::try_from(l).ok().filter(|l| (1..=29).contains(l)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                invalid(format!(
                    "JapaneseVowels {split}: a length is outside 1..=29"
                ))
            })?;
        Ok(Dataset {
            x: x.data.iter().map(|&v| v as f32).collect(),
            lengths,
            y: y.data,
            len: 29,
            features: 12,
            classes: 9,
        })
    }

    /// The long-range retrieval task of length `len` (even, 8..=4096), `n` sequences, seeded.
    ///
    /// Tokens are one-hot over `NOISE + MARKERS` symbols. Every token is a uniform noise symbol,
    /// except two motifs of [`MOTIF_LEN`] marker tokens, one at a uniform position in each half.
    /// A motif is one of [`MOTIFS`] orderings of the same marker symbols, so a bag of symbols
    /// cannot tell two motifs apart: the order inside each motif, and the comparison of two motifs
    /// up to `len` tokens apart, decide the label, `1` when both halves hide the same motif (half of
    /// the sequences, exactly balanced) and `0` otherwise.
    pub fn retrieval(n: usize, len: usize, seed: u64) -> Result<Dataset> {
        if !len.is_multiple_of(2) || !(8..=4096).contains(&len) || n == 0 {
            return Err(invalid(format!(
                "retrieval: length {len} must be even in 8..=4096 and the count {n} positive"
            )));
        }
        let features = NOISE + MARKERS;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = vec![0f32; n * len * features];
        let mut y = Vec::with_capacity(n);
        let half = len / 2;
        for (i, seq) in x.chunks_exact_mut(len * features).enumerate() {
            for tok in seq.chunks_exact_mut(features) {
                tok[rng.random_range(0..NOISE)] = 1.0;
            }
            let same = i % 2 == 0;
            let a = rng.random_range(0..MOTIFS.len());
            let b = if same {
                a
            } else {
                (a + rng.random_range(1..MOTIFS.len())) % MOTIFS.len()
            };
            for (motif, start) in [
                (a, rng.random_range(0..=half - MOTIF_LEN)),
                (b, half + rng.random_range(0..=half - MOTIF_LEN)),
            ] {
                for (t, &sym) in MOTIFS[motif].iter().enumerate() {
                    let tok = &mut seq[(start + t) * features..(start + t + 1) * features];
                    tok.fill(0.0);
                    tok[NOISE + sym] = 1.0;
                }
            }
            y.push(i64::from(same));
        }
        Ok(Dataset {
            x,
            lengths: vec![len; n],
            y,
            len,
            features,
            classes: 2,
        })
    }

    /// The sequences at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let m = self.len * self.features;
        Dataset {
            x: idx
                .iter()
                .flat_map(|&i| self.x[i * m..(i + 1) * m].iter().copied())
                .collect(),
            lengths: idx.iter().map(|&i| self.lengths[i]).collect(),
            y: idx.iter().map(|&i| self.y[i]).collect(),
            ..*self
        }
    }

    /// A seeded random split: `(train, test)` with `round(test_fraction·n)` test sequences.
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let mut idx: Vec<usize> = (0..self.n()).collect();
        idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let k = (test_fraction * self.n() as f64).round() as usize;
        (self.subset(&idx[k..]), self.subset(&idx[..k]))
    }

    /// Whether any sequence is shorter than `len` (then a padding mask is needed).
    pub fn padded(&self) -> bool {
        self.lengths.iter().any(|&l| l < self.len)
    }

    /// Tokens `[B, len, features]`, the padding mask `[B, len]` (when some sequence is padded) and
    /// the labels `[B]` of the sequences at `idx`.
    pub fn batch(
        &self,
        idx: &[usize],
        device: &Device,
    ) -> (Tensor<3>, Option<Tensor<2, Bool>>, Tensor<1, Int>) {
        let b = idx.len();
        let sub = self.subset(idx);
        let x =
            Tensor::<3>::from_data(TensorData::new(sub.x, [b, self.len, self.features]), device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(sub.y, [b]), device);
        let pad = sub.lengths.iter().any(|&l| l < self.len).then(|| {
            let mask: Vec<bool> = sub
                .lengths
                .iter()
                .flat_map(|&l| (0..self.len).map(move |t| t >= l))
                .collect();
            Tensor::<2, Bool>::from_data(TensorData::new(mask, [b, self.len]), device)
        });
        (x, pad, y)
    }
}
