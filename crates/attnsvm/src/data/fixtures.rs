//! The papers' named small instances, exactly as their notebooks draw them (float32 values widened
//! to f64), from `spec/tf-as-svm.md` §4.

use super::Instance;

/// TF-SVM `visualization1` (§4.1): n = 2 sequences of T = 3 tokens in d = 2, cross-attention,
/// labels (+1, +1); `alpha` is set to its globally optimal tokens, opt = (0, 2).
pub fn visualization1() -> Instance {
    const X: [[[f32; 2]; 3]; 2] = [
        [
            [-0.981_496_8, 0.186_395_2],
            [-1.135_571_8, -0.049_839_072],
            [-1.456_830_5, 0.114_505_18],
        ],
        [
            [0.691_717_4, -0.168_915_84],
            [0.732_312_8, -0.017_475_054],
            [0.941_347_1, -0.289_690_8],
        ],
    ];
    const Z: [[f32; 2]; 2] = [[0.845_011_35, 0.534_748_4], [-0.636_263_97, -0.771_471_4]];
    const V: [f32; 2] = [0.927_319_94, 0.374_269_66];
    two_positive_sequences(
        (2, 3, 2),
        X.as_flattened().as_flattened(),
        Z.as_flattened(),
        &V,
    )
}

/// TF-SVM `visualization2` (§4.2): n = 2 sequences of T = 5 tokens in d = 2, cross-attention,
/// labels (+1, +1); `alpha` is set to its globally optimal tokens, opt = (0, 0).
pub fn visualization2() -> Instance {
    const X: [[[f32; 2]; 5]; 2] = [
        [
            [1.0, 0.5],
            [-0.189_724_62, -0.798_354],
            [-0.797_696_4, 0.305_649_82],
            [-0.619_804_8, -0.016_821_63],
            [-1.172_422_6, 0.246_826_78],
        ],
        [
            [1.0, -0.5],
            [-0.757_443, 0.102_617_19],
            [-0.830_785_9, 0.676_377],
            [-0.813_182_3, 0.006_708_239_7],
            [-0.613_163_4, -0.054_621_76],
        ],
    ];
    const Z: [[f32; 2]; 2] = [[-0.539_128_96, -0.842_223_2], [0.952_551_9, 0.304_376_42]];
    const V: [f32; 2] = [0.977_123_8, 0.212_671_43];
    two_positive_sequences(
        (2, 5, 2),
        X.as_flattened().as_flattened(),
        Z.as_flattened(),
        &V,
    )
}

/// The float32 draws widened to f64; labels (+1, +1); `alpha` = the optimal tokens.
fn two_positive_sequences(
    dims: (usize, usize, usize),
    x: &[f32],
    z: &[f32],
    v: &[f32],
) -> Instance {
    let widen = |a: &[f32]| a.iter().map(|&e| f64::from(e)).collect::<Vec<f64>>();
    let mut inst = Instance::new(
        dims,
        widen(x),
        Some(widen(z)),
        vec![1.0, 1.0],
        widen(v),
        None,
    )
    .expect("the papers' fixtures are valid");
    inst.alpha = Some(inst.optimal_tokens());
    inst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visualization1_has_the_papers_scores_and_optimal_tokens() {
        let inst = visualization1();
        // γ of spec §4.1, to the 5 digits given there.
        let want = [-0.84040, -1.07169, -1.30809, 0.57822, 0.67255, 0.76451];
        for (g, w) in inst.scores().iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        assert_eq!(inst.optimal_tokens(), vec![0, 2]);
        assert_eq!(visualization2().optimal_tokens(), vec![0, 0]);
    }
}
