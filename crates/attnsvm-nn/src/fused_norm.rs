//! Layer normalization as one differentiable operation (a burn backend extension).
//!
//! burn's autodiff differentiates `LayerNorm` through its composed form: mean, subtract,
//! square, mean, add, square root, divide, scale and shift, each a node with its own tensors
//! forward and backward, over every token of every block. Here, per row `x` of length `D`:
//!
//! ```text
//! forward:  μ = mean(x),  r = 1/√(mean((x − μ)²) + ε),  x̂ = (x − μ)·r,  y = γ ⊙ x̂ + β
//! backward: g = ∂y ⊙ γ,   ∂x = r·(g − mean(g) − x̂·mean(g ⊙ x̂)),
//!           ∂γ = Σ_rows ∂y ⊙ x̂,   ∂β = Σ_rows ∂y
//! ```
//!
//! (rows in parallel; `x̂` and `r` are kept for the backward pass). Tested against burn's
//! `LayerNorm`, values and gradients, in f32 and f64.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, TensorMetadata};
use burn::nn::LayerNorm;
use burn::tensor::{Bytes, DType, Shape, Tensor};
use rayon::prelude::*;

use crate::fused::Real;

/// ε of the encoder's layer norms (burn's `LayerNormConfig` default, which the model uses).
pub const EPSILON: f64 = 1e-5;

/// Fused layer normalization (flex, the GPU backend of the `wgpu` feature, and their autodiff
/// wrapper).
#[backend_extension(Flex, Cube: cfg(feature = "wgpu"), Autodiff)]
pub trait FusedLayerNorm: Backend {
    /// `γ ⊙ x̂ + β` along the last dimension of `x` (by default the backend's own layer norm).
    fn layer_norm_fused(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::layer_norm(x, gamma, Some(beta), EPSILON)
    }
}

/// The kernels behind [`FusedLayerNorm`] on the backend that runs them.
pub trait LayerNormKernels: Backend {
    /// `(y, x̂, r)`, `r` with the shape of `x` but a last dimension of 1.
    fn layer_norm_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        composed_forward::<Self>(x, gamma, beta)
    }

    /// `(∂x, ∂γ, ∂β)`.
    fn layer_norm_backward(
        x_hat: FloatTensor<Self>,
        r: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        composed_backward::<Self>(x_hat, r, gamma, dy)
    }
}

/// `[D]` as `[1, …, 1, D]` (`rank` dimensions), to broadcast against rows.
fn row_shaped<B: Backend>(t: FloatTensor<B>, rank: usize) -> FloatTensor<B> {
    let mut dims = vec![1; rank];
    dims[rank - 1] = t.shape()[0];
    B::float_reshape(t, Shape::from(dims))
}

/// [`LayerNormKernels::layer_norm_forward`] composed from `B`'s operations.
fn composed_forward<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
) -> [FloatTensor<B>; 3] {
    let last = x.shape().num_dims() - 1;
    let mean = B::float_mean_dim(x.clone(), last);
    let centred = B::float_sub(x, mean);
    let var = B::float_mean_dim(B::float_mul(centred.clone(), centred.clone()), last);
    let r = B::float_recip(B::float_sqrt(B::float_add_scalar(var, EPSILON.into())));
    let x_hat = B::float_mul(centred, r.clone());
    let (gamma, beta) = (
        row_shaped::<B>(gamma, last + 1),
        row_shaped::<B>(beta, last + 1),
    );
    let y = B::float_add(B::float_mul(x_hat.clone(), gamma), beta);
    [y, x_hat, r]
}

/// [`LayerNormKernels::layer_norm_backward`] composed from `B`'s operations.
fn composed_backward<B: Backend>(
    x_hat: FloatTensor<B>,
    r: FloatTensor<B>,
    gamma: FloatTensor<B>,
    dy: FloatTensor<B>,
) -> [FloatTensor<B>; 3] {
    let shape = x_hat.shape();
    let last = shape.num_dims() - 1;
    let d = shape[last];
    let rows = shape.num_elements() / d.max(1);
    let flat = |t| B::float_reshape(t, Shape::new([rows, d]));
    let d_gamma = B::float_sum_dim(B::float_mul(flat(dy.clone()), flat(x_hat.clone())), 0);
    let d_beta = B::float_sum_dim(flat(dy.clone()), 0);
    let g = B::float_mul(dy, row_shaped::<B>(gamma, last + 1));
    let mean_g = B::float_mean_dim(g.clone(), last);
    let mean_gx = B::float_mean_dim(B::float_mul(g.clone(), x_hat.clone()), last);
    let inner = B::float_sub(B::float_sub(g, mean_g), B::float_mul(x_hat, mean_gx));
    [
        B::float_mul(inner, r),
        B::float_reshape(d_gamma, Shape::new([d])),
        B::float_reshape(d_beta, Shape::new([d])),
    ]
}

#[cfg(feature = "wgpu")]
impl FusedLayerNorm for burn::backend::Cube {}

#[cfg(feature = "wgpu")]
impl LayerNormKernels for burn::backend::Cube {}

/// Rows handed to one rayon task.
const ROWS_PER_TASK: usize = 64;

fn contiguous_values<T: Real>(t: &FlexTensor) -> Vec<T> {
    t.to_contiguous().storage::<T>().to_vec()
}

fn flex<T: Real>(data: Vec<T>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape),
        T::dtype(),
    )
}

fn forward<T: Real>(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor) -> [FlexTensor; 3] {
    let shape = x.shape();
    let d = shape[shape.num_dims() - 1];
    let (gamma, beta) = (
        contiguous_values::<T>(&gamma),
        contiguous_values::<T>(&beta),
    );
    let x = x.to_contiguous();
    let xs = x.storage::<T>();
    let (mut y, mut x_hat) = (vec![T::ZERO; xs.len()], vec![T::ZERO; xs.len()]);
    let mut r = vec![T::ZERO; xs.len() / d.max(1)];
    let (inv_d, eps) = (T::ONE / T::of(d as f64), T::of(EPSILON));
    if d > 0 {
        y.par_chunks_mut(ROWS_PER_TASK * d)
            .zip(x_hat.par_chunks_mut(ROWS_PER_TASK * d))
            .zip(r.par_chunks_mut(ROWS_PER_TASK))
            .zip(xs.par_chunks(ROWS_PER_TASK * d))
            .for_each(|(((y, x_hat), r), xs)| {
                for (((y, x_hat), r), x) in y
                    .chunks_mut(d)
                    .zip(x_hat.chunks_mut(d))
                    .zip(r.iter_mut())
                    .zip(xs.chunks(d))
                {
                    let mean = x.iter().fold(T::ZERO, |s, &v| s + v) * inv_d;
                    let var = x.iter().fold(T::ZERO, |s, &v| s + (v - mean) * (v - mean)) * inv_d;
                    *r = T::ONE / (var + eps).sqrt();
                    for (((y, h), &v), (&g, &b)) in y
                        .iter_mut()
                        .zip(x_hat.iter_mut())
                        .zip(x)
                        .zip(gamma.iter().zip(&beta))
                    {
                        *h = (v - mean) * *r;
                        *y = g * *h + b;
                    }
                }
            });
    }
    let mut r_shape = shape.clone();
    let last = r_shape.num_dims() - 1;
    r_shape[last] = 1;
    [flex(y, shape.clone()), flex(x_hat, shape), flex(r, r_shape)]
}

fn backward<T: Real>(
    x_hat: FlexTensor,
    r: FlexTensor,
    gamma: FlexTensor,
    dy: FlexTensor,
) -> [FlexTensor; 3] {
    let shape = x_hat.shape();
    let d = shape[shape.num_dims() - 1];
    let gamma = contiguous_values::<T>(&gamma);
    let (x_hat, r, dy) = (x_hat.to_contiguous(), r.to_contiguous(), dy.to_contiguous());
    let (hs, rs, dys) = (x_hat.storage::<T>(), r.storage::<T>(), dy.storage::<T>());
    let mut dx = vec![T::ZERO; hs.len()];
    let inv_d = T::ONE / T::of(d as f64);
    // Per task: its rows' ∂x, and its partial sums of ∂γ and ∂β.
    let (d_gamma, d_beta) = if d == 0 {
        (Vec::new(), Vec::new())
    } else {
        dx.par_chunks_mut(ROWS_PER_TASK * d)
            .zip(hs.par_chunks(ROWS_PER_TASK * d))
            .zip(dys.par_chunks(ROWS_PER_TASK * d))
            .zip(rs.par_chunks(ROWS_PER_TASK))
            .map(|(((dx, hs), dys), rs)| {
                let (mut dg, mut db) = (vec![T::ZERO; d], vec![T::ZERO; d]);
                for (((dx, h), dy), &r) in dx
                    .chunks_mut(d)
                    .zip(hs.chunks(d))
                    .zip(dys.chunks(d))
                    .zip(rs)
                {
                    for (((dg, db), &h), &dy) in dg.iter_mut().zip(db.iter_mut()).zip(h).zip(dy) {
                        *dg = *dg + dy * h;
                        *db = *db + dy;
                    }
                    // mean(g) and mean(g ⊙ x̂) with g = ∂y ⊙ γ.
                    let (mut sum_g, mut sum_gh) = (T::ZERO, T::ZERO);
                    for ((&dy, &g), &h) in dy.iter().zip(&gamma).zip(h) {
                        sum_g = sum_g + dy * g;
                        sum_gh = sum_gh + dy * g * h;
                    }
                    let (mean_g, mean_gh) = (sum_g * inv_d, sum_gh * inv_d);
                    for (((dx, &h), &dy), &g) in dx.iter_mut().zip(h).zip(dy).zip(&gamma) {
                        *dx = r * (dy * g - mean_g - h * mean_gh);
                    }
                }
                (dg, db)
            })
            .reduce(
                || (vec![T::ZERO; d], vec![T::ZERO; d]),
                |(mut ga, mut ba), (gb, bb)| {
                    for (a, b) in ga.iter_mut().zip(gb) {
                        *a = *a + b;
                    }
                    for (a, b) in ba.iter_mut().zip(bb) {
                        *a = *a + b;
                    }
                    (ga, ba)
                },
            )
    };
    [
        flex(dx, shape),
        flex(d_gamma, Shape::new([d])),
        flex(d_beta, Shape::new([d])),
    ]
}

fn dispatch_dtype(dtype: DType) -> bool {
    match dtype {
        DType::F32 => false,
        DType::F64 => true,
        other => panic!("fused layer norm: unsupported dtype {other:?}"),
    }
}

impl FusedLayerNorm for Flex {
    fn layer_norm_fused(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor) -> FlexTensor {
        let [y, _, _] = Self::layer_norm_forward(x, gamma, beta);
        y
    }
}

impl LayerNormKernels for Flex {
    fn layer_norm_forward(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor) -> [FlexTensor; 3] {
        if dispatch_dtype(x.dtype()) {
            forward::<f64>(x, gamma, beta)
        } else {
            forward::<f32>(x, gamma, beta)
        }
    }

    fn layer_norm_backward(
        x_hat: FlexTensor,
        r: FlexTensor,
        gamma: FlexTensor,
        dy: FlexTensor,
    ) -> [FlexTensor; 3] {
        if dispatch_dtype(x_hat.dtype()) {
            backward::<f64>(x_hat, r, gamma, dy)
        } else {
            backward::<f32>(x_hat, r, gamma, dy)
        }
    }
}

#[derive(Debug)]
struct LayerNormBackward;

impl<B: Backend + LayerNormKernels> Backward<B, 3> for LayerNormBackward {
    /// `x̂`, `r` and `γ`.
    type State = [B::FloatTensorPrimitive; 3];

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let [x_hat, r, gamma] = ops.state;
        let grads_xgb = B::layer_norm_backward(x_hat, r, gamma, dy);
        crate::fused::register_gradients!(B, grads, ops.parents, grads_xgb);
    }
}

impl<B, C> FusedLayerNorm for Autodiff<B, C>
where
    B: Backend + FusedLayerNorm + LayerNormKernels,
    C: CheckpointStrategy,
{
    fn layer_norm_fused(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), gamma.node(), beta.node()];
        let [x, gamma, beta] = [x, gamma, beta].map(|t| t.into_primitive());
        match LayerNormBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let [y, x_hat, r] = B::layer_norm_forward(x, gamma.clone(), beta);
                prep.finish([x_hat, r, gamma], y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::layer_norm_fused(x, gamma, beta)),
        }
    }
}

/// `norm` applied to `x` (along its last dimension), fused forward and backward. `norm` must
/// have a bias and ε = [`EPSILON`] (as `LayerNormConfig::new(d)` gives).
pub fn layer_norm<const D: usize>(norm: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    let beta = norm
        .beta
        .as_ref()
        .expect("the encoder's layer norms have a bias")
        .val();
    Tensor::from_dispatch(<Dispatch as FusedLayerNorm>::layer_norm_fused(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        beta.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::{layer_norm, LayerNormKernels};
    use burn::backend::flex::{Flex, FlexTensor};
    use burn::module::Param;
    use burn::nn::LayerNormConfig;
    use burn::tensor::{Distribution, Tensor};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data()
            .convert::<f64>()
            .try_to_vec()
            .expect("float data")
    }

    fn worst(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).fold(0f64, |w, (a, b)| w.max((a - b).abs()))
    }

    /// Against burn's `LayerNorm` (its composed form under autodiff): values and the gradients
    /// of the input, γ and β, on a strided input with non-trivial γ and β; and the composed
    /// kernels (the GPU backend's) against flex's.
    #[test]
    fn fused_layer_norm_matches_burns_in_values_and_gradients() {
        let device = crate::cpu();
        crate::with_seed(&device, 6, || {
            let d = 12;
            let mut norm = LayerNormConfig::new(d).init(&device);
            let random = |shape: [usize; 1], sd| {
                Tensor::<1>::random(shape, Distribution::Normal(0.0, sd), &device)
            };
            norm.gamma = Param::from_tensor(random([d], 1.0).add_scalar(1.0));
            norm.beta = Some(Param::from_tensor(random([d], 1.0)));
            let x = Tensor::<3>::random([5, d, 7], Distribution::Normal(0.5, 3.0), &device)
                .swap_dims(1, 2)
                .require_grad();
            let w = Tensor::<3>::random([5, 7, d], Distribution::Normal(0.0, 1.0), &device);
            let fused = layer_norm(&norm, x.clone());
            let reference = norm.forward(x.clone());
            assert!(worst(&values(fused.clone()), &values(reference.clone())) < 1e-5);
            let gf = (fused * w.clone()).sum().backward();
            let gr = (reference * w.clone()).sum().backward();
            let grads = |g| {
                [
                    values(x.grad(g).expect("grad")),
                    values(norm.gamma.val().grad(g).expect("grad")),
                    values(
                        norm.beta
                            .as_ref()
                            .expect("bias")
                            .val()
                            .grad(g)
                            .expect("grad"),
                    ),
                ]
            };
            for (a, r) in grads(&gf).iter().zip(grads(&gr).iter()) {
                let scale = r.iter().fold(0f64, |s, x| s.max(x.abs()));
                assert!(scale > 0.1, "a non-trivial gradient");
                assert!(
                    worst(a, r) < 1e-5 * scale,
                    "gradient differs by {}",
                    worst(a, r)
                );
            }
            let flex = |t: Tensor<3>| FlexTensor::from_data(t.inner().into_data());
            let flex1 = |t: Tensor<1>| FlexTensor::from_data(t.inner().into_data());
            let (g, b) = (
                flex1(norm.gamma.val()),
                flex1(norm.beta.as_ref().expect("bias").val()),
            );
            let fk = <Flex as LayerNormKernels>::layer_norm_forward(
                flex(x.clone()),
                g.clone(),
                b.clone(),
            );
            let ck = super::composed_forward::<Flex>(flex(x), g.clone(), b);
            let close = |a: &FlexTensor, b: &FlexTensor| {
                let (a, b) = (a.clone().into_data(), b.clone().into_data());
                worst(
                    &a.convert::<f64>().try_to_vec::<f64>().expect("data"),
                    &b.convert::<f64>().try_to_vec::<f64>().expect("data"),
                ) < 1e-5
            };
            assert!(fk.iter().zip(&ck).all(|(a, b)| close(a, b)));
            let dy = flex(w);
            let [_, xh, r] = fk;
            let fb = <Flex as LayerNormKernels>::layer_norm_backward(
                xh.clone(),
                r.clone(),
                g.clone(),
                dy.clone(),
            );
            let cb = super::composed_backward::<Flex>(xh, r, g, dy);
            for (i, (a, b)) in fb.iter().zip(&cb).enumerate() {
                assert!(close(a, b), "gradient {i}");
            }
        });
    }
}
