//! Regularization paths with the other smooth risks `Objective` supports: the λ head (merit
//! `log L`), and the exponential and correlation losses (merit `log(L − L*)` with the linear head).
//! Every point must be certified and a bigger ball must not raise the loss.

use attnsvm::data::fixtures::visualization1;
use attnsvm::model::{Head, Loss, Objective};
use attnsvm::solvers::path::{Ball, PathProblem, PathSettings, RegPath, Status};

#[test]
fn smooth_heads_and_losses_give_certified_monotone_paths() {
    let inst = visualization1();
    let cases = [
        (Head::Lambda { lambda: 0.1 }, Loss::Logistic),
        (Head::Lambda { lambda: 0.1 }, Loss::Exp),
        (Head::Linear, Loss::Exp),
        (Head::Linear, Loss::Corr),
    ];
    for (head, loss) in cases {
        for ball in [Ball::Frobenius, Ball::Nuclear, Ball::Kq] {
            let mut risk = Objective::new(&inst, head.clone(), loss, 0).unwrap();
            let problem = PathProblem::new(ball, vec![1.0, 10.0, 100.0]);
            let path = RegPath::new(&mut risk, problem, PathSettings::default())
                .unwrap()
                .solve();
            let what = format!("{head:?} {loss:?} {ball:?}");
            assert_eq!(path.status, Status::Solved, "{what}");
            for (k, p) in path.points.iter().enumerate() {
                assert!(p.residual <= 1e-10, "{what}: {}", p.residual);
                if k > 0 {
                    let prev = path.points[k - 1].loss;
                    assert!(p.loss <= prev + 1e-15 * prev.abs().max(1.0), "{what}");
                }
            }
        }
    }
}
