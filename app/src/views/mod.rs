//! One module per view, plus the run panel and the shared colours.

pub mod attention;
pub mod cache;
pub mod dsr;
pub mod metrics;
pub mod palette;
pub mod run;
