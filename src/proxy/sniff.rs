//! SNI and `Host` from a connection's first bytes (being written).
