//! The general Att-SVM program (spec `tf-as-svm.md` §2.2, §2.5):
//!
//! ```text
//! minimize ‖W‖   subject to   ⟨W, A_k⟩ = (x_{s,plus_k} − x_{s,minus_k})ᵀ W z_s  ≥ r_k   (or = r_k)
//! ```
//!
//! One *sample* `s` is a list of token rows (a prefix of one sequence), a query `z_s` and a selected
//! token. Every constraint matrix `A_k = (x_plus − x_minus) z_sᵀ` is rank one and is never formed.
//! Cross-attention, self-attention, sequence-to-sequence (one sample per query position: SAtt-SVM)
//! and causal masking (only tokens up to the query position) are all this one program.

use crate::data::Instance;
use crate::error::{invalid, Result};
use crate::linalg::dot;

/// Which norm the program minimizes: Frobenius (W-training) or nuclear ((K,Q)-training).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    #[serde(rename = "fro")]
    Frobenius,
    #[serde(rename = "nuc")]
    Nuclear,
}

/// How samples are formed from an instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    /// Self-attention: the query is the token at this position (ignored for cross-attention).
    pub query_position: usize,
    /// One sample per query position `k` (self-attention only): SAtt-SVM.
    pub seq2seq: bool,
    /// Only tokens `t ≤ k` take part, `k` the query position (self-attention only).
    pub causal: bool,
}

/// One sample: the first `len` tokens of sequence `sequence`, attended from query row `s` of the
/// problem's query matrix, with selected token `selected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub sequence: usize,
    /// Query position for self-attention samples, `None` for cross-attention.
    pub position: Option<usize>,
    pub len: usize,
    pub selected: usize,
}

/// `⟨W, (x_plus − x_minus) z_sᵀ⟩ ≥ rhs` (or `= rhs` when `equality`), tokens of sample `sample`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constraint {
    pub sample: u32,
    pub plus: u32,
    pub minus: u32,
    pub rhs: f64,
    pub equality: bool,
}

/// A validated Att-SVM program. Tokens are borrowed (instances can be large); queries are owned.
#[derive(Debug, Clone)]
pub struct AttSvmProblem<'a> {
    pub d: usize,
    /// Tokens per sequence (the row stride of `tokens`).
    pub t: usize,
    tokens: &'a [f64],
    queries: Vec<f64>,
    samples: Vec<Sample>,
    constraints: Vec<Constraint>,
    /// Constraints of sample `s` are `blocks[s]..blocks[s+1]`.
    blocks: Vec<usize>,
    /// `‖A_k‖_F²`, cached.
    norms_sq: Vec<f64>,
}

impl<'a> AttSvmProblem<'a> {
    /// The Att-SVM of `inst` for the selection `alpha`: `n` entries, or `n·T` (row-major, one per
    /// query position) with `layout.seq2seq`. Constraints `(x_{α} − x_t)ᵀ W z ≥ 1` for every visible
    /// `t ≠ α`, grouped by sample.
    pub fn att_svm(inst: &'a Instance, alpha: &[usize], layout: Layout) -> Result<Self> {
        let (n, t, d) = (inst.n, inst.t, inst.d);
        if inst.z.is_some() && (layout.seq2seq || layout.causal) {
            return Err(invalid!(
                "--seq2seq and --causal need self-attention (the instance has Z.npy)"
            ));
        }
        let positions: Vec<Option<usize>> = if inst.z.is_some() {
            vec![None]
        } else if layout.seq2seq {
            (0..t).map(Some).collect()
        } else {
            if layout.query_position >= t {
                return Err(invalid!(
                    "query position {} is out of range 0..{t} (T)",
                    layout.query_position
                ));
            }
            vec![Some(layout.query_position)]
        };
        let want = n * positions.len();
        if alpha.len() != want {
            return Err(invalid!(
                "alpha has {} entries, expected {want} ({})",
                alpha.len(),
                if layout.seq2seq {
                    "n·T for --seq2seq"
                } else {
                    "one per sequence"
                }
            ));
        }
        let mut samples = Vec::with_capacity(want);
        let mut queries = Vec::with_capacity(want * d);
        for i in 0..n {
            for (j, &pos) in positions.iter().enumerate() {
                let selected = alpha[i * positions.len() + j];
                let len = match pos {
                    Some(k) if layout.causal => k + 1,
                    _ => t,
                };
                if selected >= len {
                    let why = if len < t {
                        format!(" (causal: tokens 0..={})", len - 1)
                    } else {
                        String::new()
                    };
                    return Err(invalid!(
                        "alpha: selected token {selected} of sequence {i}{} is out of range 0..{len}{why}",
                        pos.map(|k| format!(" at query position {k}")).unwrap_or_default()
                    ));
                }
                match pos {
                    Some(k) => queries.extend_from_slice(inst.token(i, k)),
                    None => {
                        queries.extend_from_slice(&inst.z.as_ref().unwrap()[i * d..(i + 1) * d])
                    }
                }
                samples.push(Sample {
                    sequence: i,
                    position: pos,
                    len,
                    selected,
                });
            }
        }
        let mut constraints = Vec::with_capacity(samples.len() * (t - 1));
        for (s, smp) in samples.iter().enumerate() {
            for tok in (0..smp.len).filter(|&tok| tok != smp.selected) {
                constraints.push(Constraint {
                    sample: s as u32,
                    plus: smp.selected as u32,
                    minus: tok as u32,
                    rhs: 1.0,
                    equality: false,
                });
            }
        }
        Self::from_parts(d, t, &inst.x, queries, samples, constraints)
    }

    /// A general program: any token pairs, right-hand sides and equalities. Constraints must be
    /// grouped by sample (non-decreasing `sample`).
    pub fn from_parts(
        d: usize,
        t: usize,
        tokens: &'a [f64],
        queries: Vec<f64>,
        samples: Vec<Sample>,
        constraints: Vec<Constraint>,
    ) -> Result<Self> {
        if d == 0 || t == 0 {
            return Err(invalid!("Att-SVM: d and T must be positive"));
        }
        if !tokens.len().is_multiple_of(t * d) {
            return Err(invalid!(
                "Att-SVM: {} token values are not a multiple of T·d = {}",
                tokens.len(),
                t * d
            ));
        }
        let n_seq = tokens.len() / (t * d);
        if queries.len() != samples.len() * d {
            return Err(invalid!(
                "Att-SVM: {} query values for {} samples of dimension {d}",
                queries.len(),
                samples.len()
            ));
        }
        if let Some(k) = queries
            .iter()
            .chain(tokens.iter())
            .position(|v| !v.is_finite())
        {
            return Err(invalid!(
                "Att-SVM: non-finite token or query value at flat index {k}"
            ));
        }
        for (s, smp) in samples.iter().enumerate() {
            if smp.sequence >= n_seq || smp.len == 0 || smp.len > t || smp.selected >= smp.len {
                return Err(invalid!(
                    "Att-SVM: sample {s} ({smp:?}) does not fit {n_seq} sequences of {t} tokens"
                ));
            }
        }
        let mut blocks = vec![0; samples.len() + 1];
        let mut prev = 0;
        for (k, c) in constraints.iter().enumerate() {
            let s = c.sample as usize;
            if s >= samples.len() || s < prev {
                return Err(invalid!("Att-SVM: constraint {k} names sample {s}: out of range or not grouped by sample"));
            }
            let len = samples[s].len as u32;
            if c.plus >= len || c.minus >= len {
                return Err(invalid!(
                    "Att-SVM: constraint {k} names token {} or {} of a sample with {len} tokens",
                    c.plus,
                    c.minus
                ));
            }
            if !c.rhs.is_finite() {
                return Err(invalid!(
                    "Att-SVM: constraint {k} has a non-finite right-hand side"
                ));
            }
            prev = s;
            blocks[s + 1] = k + 1;
        }
        for s in 1..blocks.len() {
            blocks[s] = blocks[s].max(blocks[s - 1]);
        }
        let mut p = AttSvmProblem {
            d,
            t,
            tokens,
            queries,
            samples,
            constraints,
            blocks,
            norms_sq: Vec::new(),
        };
        p.norms_sq = (0..p.constraints.len())
            .map(|k| {
                let c = p.constraints[k];
                let a = p.direction(k);
                let z = p.query(c.sample as usize);
                dot(&a, &a) * dot(z, z)
            })
            .collect();
        Ok(p)
    }

    /// The same program with other queries (e.g. reweighted), same samples and constraints.
    pub fn with_queries(&self, queries: Vec<f64>) -> Result<Self> {
        Self::from_parts(
            self.d,
            self.t,
            self.tokens,
            queries,
            self.samples.clone(),
            self.constraints.clone(),
        )
    }

    /// The same program with other right-hand sides (`rhs[k]` for constraint k).
    pub fn with_rhs(&self, rhs: &[f64]) -> Self {
        let mut p = self.clone();
        for (c, &r) in p.constraints.iter_mut().zip(rhs) {
            c.rhs = r;
        }
        p
    }

    pub fn n_samples(&self) -> usize {
        self.samples.len()
    }
    pub fn n_constraints(&self) -> usize {
        self.constraints.len()
    }
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }
    pub fn constraints(&self) -> &[Constraint] {
        &self.constraints
    }
    /// Constraint indices of sample `s`.
    pub fn block(&self, s: usize) -> std::ops::Range<usize> {
        self.blocks[s]..self.blocks[s + 1]
    }
    /// The query `z_s`.
    #[inline]
    pub fn query(&self, s: usize) -> &[f64] {
        &self.queries[s * self.d..(s + 1) * self.d]
    }
    pub fn queries(&self) -> &[f64] {
        &self.queries
    }
    /// The token tensor the samples index into (sequences × T × d).
    pub fn tokens(&self) -> &'a [f64] {
        self.tokens
    }
    /// Token `t` of sample `s`.
    #[inline]
    pub fn token(&self, s: usize, t: usize) -> &'a [f64] {
        let o = (self.samples[s].sequence * self.t + t) * self.d;
        &self.tokens[o..o + self.d]
    }
    /// `a_k = x_plus − x_minus`, so that `A_k = a_k z_sᵀ`.
    pub fn direction(&self, k: usize) -> Vec<f64> {
        let c = self.constraints[k];
        let s = c.sample as usize;
        self.token(s, c.plus as usize)
            .iter()
            .zip(self.token(s, c.minus as usize))
            .map(|(p, m)| p - m)
            .collect()
    }
    /// `‖A_k‖_F²`.
    #[inline]
    pub fn norm_sq(&self, k: usize) -> f64 {
        self.norms_sq[k]
    }
    /// `true` when every constraint is `≥ 1` (the Att-SVM proper, where Farkas certificates apply).
    pub fn is_standard(&self) -> bool {
        self.constraints.iter().all(|c| !c.equality && c.rhs == 1.0)
    }

    /// Margins `⟨W, A_k⟩` for `W` (d×d, row-major), computed per sample as `(Wz)` then token dots.
    pub fn margins(&self, w: &[f64]) -> Vec<f64> {
        let d = self.d;
        let mut out = vec![0.0; self.constraints.len()];
        let mut u = vec![0.0; d];
        let mut proj = vec![0.0; self.t];
        for s in 0..self.samples.len() {
            let r = self.block(s);
            if r.is_empty() {
                continue;
            }
            let z = self.query(s);
            for (a, row) in u.iter_mut().zip(w.chunks_exact(d)) {
                *a = dot(row, z);
            }
            for (t, p) in proj.iter_mut().enumerate().take(self.samples[s].len) {
                *p = dot(self.token(s, t), &u);
            }
            for k in r {
                let c = self.constraints[k];
                out[k] = proj[c.plus as usize] - proj[c.minus as usize];
            }
        }
        out
    }

    /// `Σ_k λ_k A_k` as a d×d row-major matrix.
    pub fn combine(&self, lambda: &[f64]) -> Vec<f64> {
        let d = self.d;
        let mut w = vec![0.0; d * d];
        let mut g = vec![0.0; d];
        for s in 0..self.samples.len() {
            g.iter_mut().for_each(|v| *v = 0.0);
            let mut any = false;
            for k in self.block(s) {
                if lambda[k] != 0.0 {
                    any = true;
                    let c = self.constraints[k];
                    crate::linalg::axpy(lambda[k], self.token(s, c.plus as usize), &mut g);
                    crate::linalg::axpy(-lambda[k], self.token(s, c.minus as usize), &mut g);
                }
            }
            if any {
                let z = self.query(s);
                for (row, &gi) in w.chunks_exact_mut(d).zip(&g) {
                    crate::linalg::axpy(gi, z, row);
                }
            }
        }
        w
    }

    /// Gram matrix entry `⟨A_k, A_l⟩ = (a_kᵀ a_l)(z_kᵀ z_l)`.
    pub fn gram(&self, k: usize, l: usize) -> f64 {
        let (ck, cl) = (self.constraints[k], self.constraints[l]);
        let (sk, sl) = (ck.sample as usize, cl.sample as usize);
        let zz = dot(self.query(sk), self.query(sl));
        if zz == 0.0 {
            return 0.0;
        }
        let (pk, mk) = (
            self.token(sk, ck.plus as usize),
            self.token(sk, ck.minus as usize),
        );
        let (pl, ml) = (
            self.token(sl, cl.plus as usize),
            self.token(sl, cl.minus as usize),
        );
        let aa = dot(pk, pl) - dot(pk, ml) - dot(mk, pl) + dot(mk, ml);
        aa * zz
    }
}
