//! Wire types shared by the client, the local server and the in-sandbox agent.
//!
//! Everything here is plain serde data: no I/O. Client and server cannot drift because
//! both sides (de)serialise these same structs.

pub mod egress;
pub mod error;
pub mod exec;
pub mod exec_frames;
pub mod files;
pub mod host;
pub mod models;
pub mod secrets;
pub mod service;
pub mod ssh_agent;
pub mod trust;
pub mod tunnel;

pub use error::{ErrorBody, ErrorDetail, ValidationBody};
pub use models::*;
