//! Normalized-GD iterations per second (one iteration = risk, gradient and update) at the sizes of
//! the peer comparison, (n, T, d) = (20, 6, 8) and (1000, 16, 32). The ratio against PyTorch is
//! measured by `bench/ngd_vs_peer.py`, on the same instances in one run.
use attnsvm::data::generate::{generate, Family, GenSpec};
use attnsvm::model::{Head, Loss, Objective};
use attnsvm::train::{train, State, TrainSettings};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn ngd(c: &mut Criterion) {
    let mut group = c.benchmark_group("ngd_100_iterations");
    for (n, t, d) in [(20, 6, 8), (1000, 16, 32)] {
        let inst = generate(&GenSpec::new(Family::Gaussian, n, t, d, 1))
            .unwrap()
            .instance;
        let settings = TrainSettings {
            iters: 100,
            points_per_decade: 1,
            ..TrainSettings::default()
        };
        group.throughput(Throughput::Elements(100));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{n}x{t}x{d}")),
            &inst,
            |b, inst| {
                let mut obj = Objective::new(inst, Head::Linear, Loss::Logistic, 0).unwrap();
                b.iter(|| {
                    let state = State::init(&settings, d, &inst.v);
                    train(&mut obj, &settings, state, None, |_| true).unwrap()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, ngd);
criterion_main!(benches);
