//! The per-sandbox pool of synthetic addresses (being written).
