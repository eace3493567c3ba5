//! The local backend: the LangSmith Sandbox API on one Linux machine.

pub mod images;
