use attnsvm::data::generate::{generate, Family, GenSpec};
use attnsvm::model::{Head, Loss, Objective};
use attnsvm::train::{train, Init, State, TrainSettings};
fn main() {
    let g = generate(&GenSpec {
        self_attention: true,
        ..GenSpec::new(Family::Orthonormal, 4, 4, 16, 0)
    })
    .unwrap();
    let inst = g.instance;
    let wmm = g.reference.unwrap().1;
    let settings = TrainSettings {
        iters: 100_000,
        points_per_decade: 4,
        init: Init::Random,
        ..TrainSettings::default()
    };
    let mut obj = Objective::new(&inst, Head::Linear, Loss::Logistic, 0).unwrap();
    let st = State::init(&settings, inst.d, &inst.v);
    let res = train(&mut obj, &settings, st, Some(&wmm), |_| true).unwrap();
    for r in &res.trajectory.records {
        println!(
            "{:>7} 1-corr {:.3e} |W| {:.2} log10(L-L*) {:.1} log10 grad {:.1} log10 off {:.1}",
            r.iter,
            r.one_minus_corr.unwrap(),
            r.w_norm,
            r.log_excess_loss.unwrap_or(f64::NAN) / std::f64::consts::LN_10,
            r.log_grad_norm / std::f64::consts::LN_10,
            r.log_max_off_mass / std::f64::consts::LN_10
        );
    }
    println!("{:?} {:.2}s", res.stop, res.seconds);
}
