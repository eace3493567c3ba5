//! The runtime on its own against the real thing: runc, loop devices, ext4, overlayfs,
//! cgroups, and the real `langsmith` binary as the agent. They need root.

mod fixture;
mod host_disk;
mod isolation;
mod lifecycle;
mod recovery;
