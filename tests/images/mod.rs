//! Snapshot images built by the server's image pipeline on its own, with real tools: an OCI
//! layout made by `umoci`, a `docker-registry` on loopback fed by `skopeo`, and the ext4
//! image read back with `debugfs`.

mod build;
mod ext4;
mod registry;
