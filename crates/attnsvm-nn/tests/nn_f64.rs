//! attnsvm-nn in f64 ([`attnsvm_nn::set_precision`]). Its own test binary: burn fixes the float
//! type of a device once per process, and `nn.rs` runs in f32.

mod common;

use attnsvm_nn::Precision;
use burn::tensor::{DType, Distribution, Tensor};

fn f64_device() -> burn::tensor::Device {
    attnsvm_nn::set_precision(Precision::F64).unwrap();
    attnsvm_nn::cpu()
}

/// In f64 every attention kind agrees with the core crate's f64 reference to rounding (f32 gets
/// 1e-4), and padded content still leaks nowhere.
#[test]
fn every_attention_kind_matches_the_f64_reference_to_rounding() {
    let _ = f64_device();
    common::attention_kinds_match_the_reference(1e-11, 1e-12);
}

/// The fused softmax in f64: values and gradients equal the composed `e / Σe` to rounding.
#[test]
fn the_fused_softmax_is_exact_in_f64() {
    let device = f64_device();
    let x = attnsvm_nn::with_seed(&device, 5, || {
        Tensor::<3>::random([3, 4, 9], Distribution::Normal(0.0, 4.0), &device)
    });
    assert_eq!(x.dtype(), DType::F64);
    let x = x.require_grad();
    let w = attnsvm_nn::with_seed(&device, 6, || {
        Tensor::<3>::random([3, 4, 9], Distribution::Normal(0.0, 1.0), &device)
    });
    let fused = attnsvm_nn::fused::softmax_last(x.clone());
    let e = (x.clone() - x.clone().detach().max_dim(2)).exp();
    let composed = e.clone() / e.sum_dim(2);
    let max_diff = |a: Vec<f64>, b: Vec<f64>| {
        a.iter()
            .zip(&b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    let (f, c) = (
        common::values(fused.clone()),
        common::values(composed.clone()),
    );
    assert!(max_diff(f, c) < 1e-15);
    let gf = x.grad(&(fused * w.clone()).sum().backward()).unwrap();
    let gc = x.grad(&(composed * w).sum().backward()).unwrap();
    assert!(max_diff(common::values(gf), common::values(gc)) < 1e-14);
}

/// The short digits run of `nn.rs` in f64: parameters are f64, and it learns as the f32 run does.
#[test]
fn an_f64_run_trains_f64_parameters() {
    let model = common::short_digits_run(&f64_device());
    assert_eq!(
        model.blocks[0].attention.query.weight.val().dtype(),
        DType::F64
    );
    // The type is fixed now: asking for f32 is an error, asking for f64 again is not.
    let err = attnsvm_nn::set_precision(Precision::F32).unwrap_err();
    assert!(err.to_string().contains("already fixed"), "{err}");
    attnsvm_nn::set_precision(Precision::F64).unwrap();
}
