//! Normalized GD from W = 0 on an instance directory, the way `attn_ref.py ngd` runs it:
//! `cargo run --release -p attnsvm --example ngd_run -- DIR ITERS LR OUT.npy`.
//! Prints one JSON line with the wall time per iteration.
use attnsvm::data::Instance;
use attnsvm::model::{Head, Loss, Objective};
use attnsvm::train::{train, State, TrainSettings};

fn main() -> attnsvm::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, iters, lr, out] = &args[..] else {
        eprintln!("usage: ngd_run DIR ITERS LR OUT.npy");
        std::process::exit(2);
    };
    let inst = Instance::load(dir.as_ref())?;
    let settings = TrainSettings {
        iters: iters.parse().expect("ITERS"),
        lr: lr.parse().expect("LR"),
        points_per_decade: 1,
        ..TrainSettings::default()
    };
    let mut obj = Objective::new(&inst, Head::Linear, Loss::Logistic, 0)?;
    let state = State::init(&settings, inst.d, &inst.v);
    let res = train(&mut obj, &settings, state, None, |_| true)?;
    attnsvm::data::npy::write_mat(out.as_ref(), &res.state.w)?;
    let last = res.trajectory.records.last().expect("a record");
    println!(
        "{{\"cmd\": \"ngd\", \"iters\": {}, \"total_s\": {}, \"per_iter_s\": {}, \"loss\": {}, \"norm\": {}}}",
        res.iterations,
        res.seconds,
        res.seconds / res.iterations.max(1) as f64,
        last.loss,
        last.w_norm
    );
    Ok(())
}
