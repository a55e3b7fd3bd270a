//! The data sets shipped in `data/` (see `data/README.md`) load with the crate's `.npy` reader and
//! have the documented shapes, label ranges, value ranges and zero padding.

use std::path::PathBuf;

use attnsvm::data::npy::{read_f64, read_i64};

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(rel)
}

#[test]
fn digits_are_1797_images_of_8x8_integer_grey_levels_with_10_balanced_classes() {
    let x = read_f64(&data("digits/X.npy")).unwrap();
    let y = read_i64(&data("digits/y.npy")).unwrap();
    assert_eq!(x.shape, [1797, 8, 8]);
    assert_eq!(y.shape, [1797]);
    assert!(x
        .data
        .iter()
        .all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0));
    let mut counts = [0usize; 10];
    for &c in &y.data {
        counts[usize::try_from(c).unwrap()] += 1;
    }
    // The classes of the UCI test set hold 174 to 183 images each.
    assert!(
        counts.iter().all(|&c| (174..=183).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn japanese_vowels_has_the_uea_split_lengths_and_zero_padding() {
    for (split, cases) in [("train", 270), ("test", 370)] {
        let x = read_f64(&data(&format!("japanese_vowels/X_{split}.npy"))).unwrap();
        let len = read_i64(&data(&format!("japanese_vowels/len_{split}.npy"))).unwrap();
        let y = read_i64(&data(&format!("japanese_vowels/y_{split}.npy"))).unwrap();
        assert_eq!(x.shape, [cases, 29, 12]);
        assert_eq!(
            (len.shape.as_slice(), y.shape.as_slice()),
            (&[cases][..], &[cases][..])
        );
        assert!(y.data.iter().all(|c| (0..9).contains(c)));
        assert!(len.data.iter().all(|l| (7..=29).contains(l)));
        for (i, &l) in len.data.iter().enumerate() {
            let series = &x.data[i * 29 * 12..(i + 1) * 29 * 12];
            let l = usize::try_from(l).unwrap();
            assert!(
                series[l * 12..].iter().all(|&v| v == 0.0),
                "case {i}: padding is not zero"
            );
            // The last real step is not all zeros (so `len` is the true length).
            assert!(
                series[(l - 1) * 12..l * 12].iter().any(|&v| v != 0.0),
                "case {i}"
            );
        }
        // Training cases: 30 per speaker.
        if split == "train" {
            for c in 0..9 {
                assert_eq!(y.data.iter().filter(|&&v| v == c).count(), 30);
            }
        }
    }
}
