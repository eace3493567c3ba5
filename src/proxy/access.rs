//! `access_control`: parsing, validation and decisions (being written).
