//! What the run panel holds: the model to load, the training preset and its options, the
//! evaluation size and the input the views look at (drawn by `views::run`).

use std::path::PathBuf;

use anyhow::Result;
use dsrsq::model::Config;
use dsrsq::train::TrainOptions;

/// The run panel's training choices: (name, config preset in `assets/configs/`, data, steps of a
/// live run). The configs are the TOML presets; the step counts are short live runs, not
/// `dsrsq reproduce`'s recipes.
pub const PRESETS: [(&str, &str, &str, usize); 3] = [
    ("tiny", "tiny", "passkey:ctx=2048", 300),
    ("tiny-mqar", "tiny-mqar", "mqar:ctx=256,pairs=16", 300),
    ("micro", "micro", "passkey:ctx=256", 40),
];

pub struct RunForm {
    pub config: String,
    pub checkpoint: String,
    pub preset: usize,
    pub train_data: String,
    pub steps: usize,
    pub out_dir: String,
    pub eval_examples: usize,
    pub input_spec: String,
    pub input_index: u64,
}

impl Default for RunForm {
    fn default() -> Self {
        Self {
            config: String::new(),
            checkpoint: String::new(),
            preset: 0,
            train_data: PRESETS[0].2.into(),
            steps: PRESETS[0].3,
            out_dir: "runs/app".into(),
            eval_examples: 8,
            input_spec: "passkey:ctx=512".into(),
            input_index: 0,
        }
    }
}

impl RunForm {
    pub fn set_preset(&mut self, i: usize) {
        if let Some(p) = PRESETS.get(i) {
            self.preset = i;
            self.train_data = p.2.into();
            self.steps = p.3;
        }
    }

    pub fn training_config(&self) -> Result<Config> {
        crate::subject::config_from(PRESETS.get(self.preset).map_or("tiny", |p| p.1))
    }

    /// Each training started from the app gets its own folder under the form's output folder
    /// (`OUT/<UTC time>`), so a second run never meets the first one's files.
    pub fn session_options(&self) -> Result<TrainOptions> {
        let out = self.out_dir.trim();
        let mut o = TrainOptions::new(self.training_config()?, self.train_data.trim(), self.steps);
        o.out_dir = (!out.is_empty()).then(|| PathBuf::from(out).join(run_stamp()));
        Ok(o)
    }
}

/// `YYYYMMDD-HHMMSS` UTC, unique per second (two runs started within one second would share
/// a folder, and the second is then refused by the run folder's lock or its existing run).
fn run_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    dsrsq::eval::report::utc(secs)
        .replace(['-', ':'], "")
        .replace(' ', "-")
}
