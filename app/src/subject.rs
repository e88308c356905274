//! The model the views look at (a loaded checkpoint or the live training run) and the input
//! they look at it on (an example of a data spec's held-out split).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use dsrsq::data::{DataSpec, Dataset, Example, LoadOptions, Split, Tok};
use dsrsq::model::{Config, Model};
use dsrsq::train::checkpoint;
use dsrsq::Tensor;

/// Parameters on the host with their config.
#[derive(Clone)]
pub struct Subject {
    pub cfg: Config,
    pub params: Vec<Tensor>,
    /// Where the parameters come from, for the UI.
    pub origin: String,
    /// Changes whenever the parameters do, so views know to recompute.
    pub version: u64,
}

/// A config by preset name (`tiny`, `tiny-mqar`, `seed`, `micro`) or TOML file path.
pub fn config_from(text: &str) -> Result<Config> {
    let t = text.trim();
    if t.is_empty() {
        bail!("no config given");
    }
    if Path::new(t).is_file() {
        return Ok(Config::from_file(Path::new(t))?);
    }
    Config::preset(t).map_err(|e| anyhow!("{e} (or a TOML file that exists)"))
}

/// A checkpoint file (`.safetensors`) or a run folder (its newest checkpoint).
pub fn resolve_checkpoint(path: &str) -> Result<PathBuf> {
    let p = PathBuf::from(path.trim());
    if p.is_file() {
        return Ok(p);
    }
    if p.is_dir() {
        for dir in [p.join("checkpoints"), p.clone()] {
            if dir.is_dir() {
                if let Some(found) = checkpoint::latest(&dir)? {
                    return Ok(found);
                }
            }
        }
        bail!("{}: no complete checkpoint in this folder", p.display());
    }
    bail!("{}: no such file or folder", p.display())
}

/// Loads a checkpoint; `config` (if given) must fit its tensors.
pub fn load(path: &str, config: Option<&str>, version: u64) -> Result<Subject> {
    let file = resolve_checkpoint(path)?;
    let ck =
        checkpoint::load_weights(&file).with_context(|| format!("loading {}", file.display()))?;
    let cfg = match config {
        Some(c) if !c.trim().is_empty() => config_from(c)?,
        _ => ck.sidecar.config.clone(),
    };
    let params: Vec<Tensor> = ck.params.into_iter().map(|(_, t)| t).collect();
    // Shapes against the config, named on mismatch (no tensor is uploaded anywhere).
    Model::from_host(&dsrsq::backend::CpuBackend, &cfg, &params)
        .with_context(|| format!("{} does not fit this config", file.display()))?;
    Ok(Subject {
        cfg,
        params,
        origin: format!("{} (step {})", file.display(), ck.sidecar.step),
        version,
    })
}

/// The input the views run on.
pub struct InputSource {
    tok: Tok,
    opened: Option<(String, u64, Box<dyn Dataset>)>,
}

impl InputSource {
    pub fn new() -> Result<Self> {
        Ok(Self {
            tok: Tok::bundled()?,
            opened: None,
        })
    }

    pub fn tok(&self) -> &Tok {
        &self.tok
    }

    /// Example `index` of `spec`'s held-out split under `seed`.
    pub fn example(&mut self, spec: &str, seed: u64, index: u64) -> Result<Example> {
        let fresh = !matches!(&self.opened, Some((s, sd, _)) if s == spec && *sd == seed);
        if fresh {
            let ds = DataSpec::parse(spec)?.open(
                &self.tok,
                seed,
                Split::Eval,
                &LoadOptions::default(),
            )?;
            self.opened = Some((spec.to_string(), seed, ds));
        }
        match &self.opened {
            Some((_, _, ds)) => Ok(ds.example(index)?),
            None => bail!("no dataset open"),
        }
    }

    /// Display text of one token.
    pub fn token_text(&self, id: u32) -> String {
        self.tok.id_to_token(id).unwrap_or_else(|| format!("#{id}"))
    }
}

/// Builds the subject's model on `k`'s backend and runs `f` on it.
#[macro_export]
macro_rules! with_model {
    ($k:expr, $subject:expr, $be:ident, $model:ident => $body:expr) => {
        $crate::with_backend!($k, $be => {
            match dsrsq::model::Model::from_host($be, &$subject.cfg, &$subject.params) {
                Ok($model) => $body,
                Err(e) => Err(anyhow::Error::from(e)),
            }
        })
    };
}
