//! `svm-values` (checks 12 and 20): the printed cvxopt values and the W↔p equivalence.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use attnsvm::experiments::max_margin::svm_values;
use attnsvm::experiments::Claim;

use crate::cmd::suite::{Experiment, Step};
use crate::output::write_json;

pub struct SvmValues;

impl Experiment for SvmValues {
    fn name(&self) -> &'static str {
        "svm-values"
    }

    fn title(&self) -> &'static str {
        "the p-, relaxed p- and v-SVMs: the notebooks' printed values and the W↔p equivalence (checks 12, 20)"
    }

    fn run(&self, quick: bool, dir: &Path, step: &Step) -> Result<Vec<Claim>> {
        if !step.advance(0, 1) {
            return Err(step.interrupted());
        }
        let r = svm_values(quick)?;
        write_json(&dir.join("svm_values.json"), &r)?;
        let mut csv = String::from("program,status,half_sq_norm,printed_pcost,p0,p1,p2,kkt_max\n");
        for p in &r.printed {
            let s = &p.svm.solution;
            let _ = writeln!(
                csv,
                "{},{:?},{},{},{},{},{},{}",
                p.name.replace(',', ";"),
                p.svm.status,
                p.svm.half_sq_norm,
                p.printed_pcost,
                s[0],
                s[1],
                s.get(2).map(|x| x.to_string()).unwrap_or_default(),
                p.svm.kkt_max
            );
        }
        attnsvm::data::npy::write_text(&dir.join("svm_values.csv"), &csv)?;
        Ok(r.claims())
    }
}
