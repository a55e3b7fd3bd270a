//! The SH downsampler `P_r` (spec §2.2, §5.12): masked average pooling with kernel = stride = r,
//! along the token axis or over `r×r` blocks of a token grid. A pooled key is the mean of its
//! valid members; a slot with no valid member is padding. A CLS token (token 0) is kept as is.

use faer::Mat;

use super::{Pooling, ScaledHeads};
use crate::error::{invalid, Result};

pub(super) struct Pooled {
    pub keys: Mat<f64>,
    pub values: Mat<f64>,
    pub valid: Vec<bool>,
}

/// `N_s`: the number of keys of a head with ratio `r` on `n` tokens (CLS included).
pub fn pooled_length(n: usize, r: usize, pooling: Pooling, cls: bool) -> usize {
    let body = n - usize::from(cls);
    let slots = match pooling {
        Pooling::OneD => body.div_ceil(r),
        Pooling::TwoD { rows, cols } => rows.div_ceil(r) * cols.div_ceil(r),
    };
    slots + usize::from(cls)
}

/// A 2D grid must hold exactly the non-CLS tokens.
pub(super) fn check_grid(sh: &ScaledHeads, n: usize) -> Result<()> {
    let body = n.checked_sub(usize::from(sh.cls));
    match (sh.pooling, body) {
        (_, None) => Err(invalid!("attention-SH: a CLS token needs N ≥ 1")),
        (Pooling::TwoD { rows, cols }, Some(b)) if rows * cols != b => Err(invalid!(
            "attention-SH: a {rows}×{cols} grid needs {} tokens{}, got {n}",
            rows * cols + usize::from(sh.cls),
            if sh.cls { " (with CLS)" } else { "" }
        )),
        _ => Ok(()),
    }
}

/// The members of each pooled slot, in slot order.
fn groups(n: usize, r: usize, pooling: Pooling, cls: bool) -> Vec<Vec<usize>> {
    let off = usize::from(cls);
    let mut out: Vec<Vec<usize>> = if cls { vec![vec![0]] } else { vec![] };
    match pooling {
        Pooling::OneD => {
            let body: Vec<usize> = (off..n).collect();
            out.extend(body.chunks(r).map(<[usize]>::to_vec));
        }
        Pooling::TwoD { rows, cols } => {
            for bi in 0..rows.div_ceil(r) {
                for bj in 0..cols.div_ceil(r) {
                    let mut g = Vec::with_capacity(r * r);
                    for i in bi * r..((bi + 1) * r).min(rows) {
                        for j in bj * r..((bj + 1) * r).min(cols) {
                            g.push(off + i * cols + j);
                        }
                    }
                    out.push(g);
                }
            }
        }
    }
    out
}

/// Pool the keys and values of one head.
pub(super) fn pool(
    k: &Mat<f64>,
    v: &Mat<f64>,
    valid: &[bool],
    r: usize,
    sh: &ScaledHeads,
) -> Result<Pooled> {
    check_grid(sh, k.nrows())?;
    let groups = groups(k.nrows(), r, sh.pooling, sh.cls);
    let members: Vec<Vec<usize>> = groups
        .iter()
        .map(|g| g.iter().copied().filter(|&j| valid[j]).collect())
        .collect();
    let mean = |m: &Mat<f64>| {
        Mat::from_fn(members.len(), m.ncols(), |s, c| {
            let g = &members[s];
            if g.is_empty() {
                0.0
            } else {
                g.iter().map(|&j| m[(j, c)]).sum::<f64>() / g.len() as f64
            }
        })
    };
    Ok(Pooled {
        keys: mean(k),
        values: mean(v),
        valid: members.iter().map(|g| !g.is_empty()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_partition_the_tokens_and_match_pooled_length() {
        let cases = [
            (10, 3, Pooling::OneD, false),
            (10, 3, Pooling::OneD, true),
            (13, 2, Pooling::TwoD { rows: 3, cols: 4 }, true),
            (15, 2, Pooling::TwoD { rows: 5, cols: 3 }, false),
        ];
        for (n, r, pooling, cls) in cases {
            let g = groups(n, r, pooling, cls);
            assert_eq!(g.len(), pooled_length(n, r, pooling, cls));
            let mut all: Vec<usize> = g.concat();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>());
            assert!(g.iter().all(|m| !m.is_empty() && m.len() <= r * r));
        }
    }
}
