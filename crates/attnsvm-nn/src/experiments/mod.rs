//! The experiments of `attnsvm repro primal-dual` (spec `primal-dual.md` §4): accuracy and head
//! redundancy of every attention variant on three tasks ([`accuracy`]), and the cost of the
//! attention kinds, analytic and measured, against the sequence length and the width ([`cost`]).
//!
//! | task | data | tokens | SH pooling |
//! |---|---|---|---|
//! | `digits` | scikit-learn's 8×8 digits, 2×2 patches, a seeded 80/20 split | 16 × 4 features | 2D, on the 4×4 patch grid |
//! | `vowels` | JapaneseVowels, the archive's 270/370 split | 7–29 (padded) × 12 | 1D |
//! | `retrieval` | generated ([`crate::data::Dataset::retrieval`]): same motif in both halves? | 128 × 11 | 1D |
//!
//! `--quick` runs each on a small subset for 2 epochs and one seed (the CLI tests use it).

pub mod accuracy;
pub mod cost;

use attnsvm::model::attention::{
    AttentionConfig as Reference, BatchNorm, Pooling, ScaledHeads, Sparsity as RefSparsity,
};
use attnsvm::Result;

use crate::attention::{AttentionKind, Sparsity};
use crate::data::{default_dir, Dataset};
use crate::model::ClassifierConfig;
use crate::train::TrainConfig;

/// A classification task of the accuracy experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Digits,
    Vowels,
    Retrieval,
}

/// A task's train and test sets and its token grid.
pub struct TaskData {
    pub train: Dataset,
    pub test: Dataset,
    pub grid: Option<[usize; 2]>,
}

impl Task {
    pub const ALL: [Task; 3] = [Task::Digits, Task::Vowels, Task::Retrieval];

    pub fn name(self) -> &'static str {
        match self {
            Task::Digits => "digits",
            Task::Vowels => "vowels",
            Task::Retrieval => "retrieval",
        }
    }

    /// The data (quick: a subset).
    pub fn load(self, quick: bool) -> Result<TaskData> {
        let dir = default_dir();
        let cut = |d: Dataset, n: usize| {
            let idx: Vec<usize> = (0..d.n().min(n)).collect();
            d.subset(&idx)
        };
        let (train, test, grid) = match self {
            Task::Digits => {
                let (train, test) = Dataset::digits(&dir, 2)?.split(0.2, 0);
                (train, test, Some([4, 4]))
            }
            Task::Vowels => (
                Dataset::japanese_vowels(&dir, "train")?,
                Dataset::japanese_vowels(&dir, "test")?,
                None,
            ),
            Task::Retrieval => {
                let len = if quick { 32 } else { 128 };
                (
                    Dataset::retrieval(512, len, 1)?,
                    Dataset::retrieval(256, len, 2)?,
                    None,
                )
            }
        };
        Ok(if quick {
            TaskData {
                train: cut(train, 96),
                test: cut(test, 48),
                grid,
            }
        } else {
            TaskData { train, test, grid }
        })
    }

    /// The optimization settings (the same for every variant).
    pub fn train_config(self, quick: bool) -> TrainConfig {
        let epochs = match (quick, self) {
            (true, _) => 2,
            (false, Task::Digits) => 30,
            (false, Task::Vowels) => 60,
            (false, Task::Retrieval) => 25,
        };
        TrainConfig::new()
            .with_epochs(epochs)
            .with_batch_size(32)
            .with_warmup_epochs(if quick { 1 } else { 3 })
    }
}

/// The core crate's f64 reference configuration of a classifier's attention (the cost formulas
/// live there); `None` for the simplex kind, which has no reference.
pub fn reference_config(c: &ClassifierConfig) -> Option<Reference> {
    let mut r = match c.attention {
        AttentionKind::Softmax => Reference::softmax(c.n_heads),
        AttentionKind::Linear => Reference::linear(c.n_heads),
        AttentionKind::Simplex => return None,
    };
    if c.batch_norm {
        r = r.with_batch_norm(BatchNorm::default());
    }
    if !c.ratios.is_empty() {
        r = r.with_scaled_heads(ScaledHeads {
            ratios: c.ratios.clone(),
            pooling: match c.grid {
                Some([rows, cols]) => Pooling::TwoD { rows, cols },
                None => Pooling::OneD,
            },
            cls: false,
        });
    }
    Some(r.with_sparsity(match c.sparsity {
        Sparsity::Dense => RefSparsity::Dense,
        Sparsity::TopK(k) => RefSparsity::TopK(k),
        Sparsity::Window(w) => RefSparsity::Window(w),
    }))
}

/// Mean and (sample) standard deviation; the deviation is 0 for one value.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}
