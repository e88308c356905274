//! DSRSQ desktop visualizer: what the model does (training curves, SQA key clusters and
//! routing, DSR selection, the RCKV ring), computed by the `dsrsq` library and drawn with egui.
//! The binary (`main.rs`) only opens the window; everything here also runs headless in the
//! snapshot tests.

pub mod app;
pub mod background;
pub mod evaluator;
pub mod frame;
pub mod frame_stats;
pub mod kernels;
pub mod run_form;
pub mod subject;
pub mod trainer;
pub mod view_jobs;
pub mod views;

pub use app::{background, AppState, Tab};
