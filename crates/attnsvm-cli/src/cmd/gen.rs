//! `attnsvm gen`: write a seeded instance directory of one of the papers' data families, with the
//! family's reference matrix (`W_mm.npy` for orthonormal, `W_star.npy` for planted) and a
//! `summary.json`.

use std::path::PathBuf;

use anyhow::Result;
use attnsvm::data::generate::{generate, Family, GenSpec};
use attnsvm::data::npy;
use clap::Args;
use serde::Serialize;

use super::{serde_enum, with_default};
use crate::error::bad_input;
use crate::output::{check_destination, write_json, Staging, TOOL};
use crate::Outcome;

#[derive(Debug, Args)]
#[command(after_help = "Families:
  gaussian     tokens and queries N(0, I/d), unit v
  sphere       unit-norm tokens and queries, unit v
  orthonormal  x_it = e_(iT+t), query = token 0; W_mm in closed form (needs d ≥ n·T, T ≥ 2)
  equal-score  optimal token score 1, every other score ½
  planted      a hidden unit-norm W* under which the optimal token wins every logit by ≥ δ (T ≥ 2)
The same flags always give the same files, byte for byte.")]
pub struct GenArgs {
    /// Data family
    #[arg(long, value_parser = serde_enum::<Family>(Family::ALL.map(Family::name)))]
    pub family: Family,
    /// Number of sequences n
    #[arg(long, value_name = "N")]
    pub n: usize,
    /// Tokens per sequence T
    #[arg(long = "T", value_name = "T")]
    pub t: usize,
    /// Token dimension d
    #[arg(long, value_name = "D")]
    pub d: usize,
    /// Seed (the only source of randomness)
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Self-attention: write no Z.npy; the query is token 0 of each sequence
    #[arg(long = "self-attn")]
    pub self_attn: bool,
    #[arg(long, value_name = "δ", allow_negative_numbers = true,
          help = with_default("planted only: logit margin δ > 0 of the optimal token under W* (logit units)",
                              GenSpec::new(Family::Planted, 1, 1, 1, 0).margin))]
    pub margin: Option<f64>,
    /// Instance directory to create (replaces an earlier `gen` output there)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// What `summary.json` of an instance directory holds.
#[derive(Debug, Serialize)]
struct GenSummary {
    tool: &'static str,
    command: &'static str,
    family: Family,
    n: usize,
    #[serde(rename = "T")]
    t: usize,
    d: usize,
    seed: u64,
    self_attention: bool,
    /// The planted family's margin δ.
    margin: Option<f64>,
    /// The reference matrix file, when the family has one.
    reference: Option<String>,
    files: Vec<String>,
}

pub fn run(args: GenArgs) -> Result<Outcome> {
    let mut spec = GenSpec::new(args.family, args.n, args.t, args.d, args.seed);
    spec.self_attention = args.self_attn;
    if let Some(margin) = args.margin {
        if args.family != Family::Planted {
            return Err(bad_input!(
                "--margin applies only to --family planted (got --family {})",
                args.family.name()
            ));
        }
        spec.margin = margin;
    }
    check_destination(&args.out, "gen", &[])?;
    let generated = generate(&spec)?;

    let staging = Staging::create(&args.out, "gen")?;
    let dir = staging.path();
    generated.instance.save(dir)?;
    let reference = match &generated.reference {
        Some((name, m)) => {
            let file = format!("{name}.npy");
            npy::write_mat(&dir.join(&file), m)?;
            Some(file)
        }
        None => None,
    };
    let mut files: Vec<String> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    files.push("summary.json".into());
    files.sort();
    let inst = &generated.instance;
    let summary = GenSummary {
        tool: TOOL,
        command: "gen",
        family: spec.family,
        n: inst.n,
        t: inst.t,
        d: inst.d,
        seed: spec.seed,
        self_attention: inst.is_self_attention(),
        margin: (spec.family == Family::Planted).then_some(spec.margin),
        reference: reference.clone(),
        files: files.clone(),
    };
    write_json(&dir.join("summary.json"), &summary)?;
    staging.commit()?;

    let attention = if inst.is_self_attention() {
        "self-attention, query = token 0"
    } else {
        "cross-attention"
    };
    println!(
        "generated {} instance: n = {}, T = {}, d = {}, seed {}, {attention}",
        spec.family.name(),
        inst.n,
        inst.t,
        inst.d,
        spec.seed
    );
    if let Some(file) = &reference {
        println!("  reference matrix {file}");
    }
    println!("  wrote {} ({})", args.out.display(), files.join(", "));
    Ok(Outcome::Done)
}
