//! The DNS stub (being written).
