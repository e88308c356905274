//! The DSRSQ model. So far: its configuration (the model itself lands with issue 4).

pub mod config;

pub use config::{Config, ConfigError};
