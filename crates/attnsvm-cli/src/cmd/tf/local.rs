//! `local`: local convergence of W and (K,Q) to the SVM of the selection they make (§4.3).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use attnsvm::experiments::tf_svm::local::{run, LocalConfig, LocalResult, SeedResult, Trained};
use attnsvm::experiments::Claim;

use crate::cmd::suite::{Experiment, Step};
use crate::figure::{plot_xy, Corner, Style, XyPanel};
use crate::output::write_json;
use crate::plot::PALETTE;

pub struct Local;

impl Experiment for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    fn title(&self) -> &'static str {
        "local_converge: W and (K,Q) converge to the SVM of the (locally optimal) selection they make (§4.3)"
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        let cfg = LocalConfig::new(quick);
        let res = match run(&cfg, &|k, n| step.advance(k, n)) {
            Err(attnsvm::Error::Interrupted) => return Err(step.interrupted()),
            r => r?,
        };
        write_json(&dir.join("result.json"), &res)?;
        attnsvm::data::npy::write_text(&dir.join("seeds.csv"), &seeds_csv(&res))?;
        attnsvm::data::npy::write_text(&dir.join("curves.csv"), &curves_csv(&res))?;
        let title = format!(
            "local convergence: n = {}, T = {}, d = {}, {} seeds, NGD η = {} (mean over seeds)",
            cfg.n,
            cfg.t,
            cfg.d,
            cfg.seeds.len(),
            cfg.lr
        );
        plot_xy(dir, "figure", &title, &panels(&res), 1, (1500, 500))?;
        Ok(res.claims())
    }
}

type Pick = fn(&SeedResult) -> &Trained;
const RUNS: [(&str, Pick); 3] = [
    ("W", |s| &s.w),
    ("(K,Q), ridge 2.2e-16", |s| &s.kq),
    ("(K,Q), no ridge", |s| &s.kq_no_ridge),
];

fn seeds_csv(res: &LocalResult) -> String {
    let mut s = String::from(
        "seed,run,selected,globally_optimal,locally_optimal,optimal_inputs,support_tokens,corr_fro,corr_nuc\n",
    );
    for r in &res.seeds {
        for (name, pick) in RUNS {
            let t = pick(r);
            let a = &t.analysis;
            let sel: Vec<String> = a.selected.iter().map(|x| x.to_string()).collect();
            let _ = writeln!(
                s,
                "{},{name},{},{},{},{},{},{:.8},{:.8}",
                r.seed,
                sel.join(" "),
                a.globally_optimal,
                a.locally_optimal,
                a.optimal_count,
                a.support_tokens,
                t.corr_fro.last().unwrap_or(&f64::NAN),
                t.corr_nuc.last().unwrap_or(&f64::NAN)
            );
        }
    }
    s
}

fn curves_csv(res: &LocalResult) -> String {
    let mut s = String::from("run,iter,mean_max_prob,corr_fro,corr_nuc\n");
    for (name, pick) in RUNS {
        let p = res.mean_curve(|s| &pick(s).mean_max_prob);
        let f = res.mean_curve(|s| &pick(s).corr_fro);
        let n = res.mean_curve(|s| &pick(s).corr_nuc);
        for (j, k) in res.steps.iter().enumerate() {
            let _ = writeln!(s, "{name},{k},{:.10},{:.10},{:.10}", p[j], f[j], n[j]);
        }
    }
    s
}

fn panels(res: &LocalResult) -> Vec<XyPanel> {
    let xs: Vec<f64> = res.steps.iter().map(|&k| k as f64).collect();
    let curve = |v: Vec<f64>| xs.iter().copied().zip(v).collect::<Vec<_>>();
    let mut prob = XyPanel::new(
        "softmax probability of the selected token",
        "iteration",
        "mean max_t s_it",
        false,
        false,
    );
    let mut corr = XyPanel::new(
        "correlation with the SVM of α̂",
        "iteration",
        "mean corr",
        false,
        false,
    );
    for (j, (name, pick)) in RUNS.iter().enumerate() {
        let color = PALETTE[j];
        prob.add(
            *name,
            curve(res.mean_curve(|s| &pick(s).mean_max_prob)),
            color,
            Style::Line,
        );
        corr.add(
            format!("{name} vs W^mm"),
            curve(res.mean_curve(|s| &pick(s).corr_fro)),
            color,
            if j == 0 { Style::Line } else { Style::Dashed },
        );
        corr.add(
            format!("{name} vs W^mm_⋆"),
            curve(res.mean_curve(|s| &pick(s).corr_nuc)),
            color,
            if j == 0 { Style::Dashed } else { Style::Line },
        );
    }
    prob.x_range = Some((0.0, 1000.0));
    corr.y_range = Some((0.5, 1.01));
    let mut last = XyPanel::new(
        "final corr with the matching SVM, seeds sorted",
        "seed rank",
        "corr",
        false,
        false,
    );
    for (j, (name, pick)) in RUNS.iter().enumerate() {
        let mut v: Vec<f64> = res
            .seeds
            .iter()
            .map(|s| {
                let t = pick(s);
                *if j == 0 { &t.corr_fro } else { &t.corr_nuc }
                    .last()
                    .unwrap_or(&f64::NAN)
            })
            .collect();
        v.sort_by(f64::total_cmp);
        last.add(
            *name,
            v.into_iter()
                .enumerate()
                .map(|(i, c)| (i as f64, c))
                .collect(),
            PALETTE[j],
            Style::LinePoints,
        );
    }
    for p in [&mut prob, &mut corr, &mut last] {
        p.legend = Corner::LowerRight;
    }
    vec![prob, corr, last]
}
