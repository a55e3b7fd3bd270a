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
    let x = X
        .iter()
        .flatten()
        .flatten()
        .map(|&e| f64::from(e))
        .collect();
    let z = Z.iter().flatten().map(|&e| f64::from(e)).collect();
    let v = V.iter().map(|&e| f64::from(e)).collect();
    let mut inst = Instance::new((2, 3, 2), x, Some(z), vec![1.0, 1.0], v, None)
        .expect("the visualization1 instance is valid");
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
    }
}
