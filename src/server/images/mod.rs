//! Images: turn an image reference into a snapshot — pull from an OCI registry (or read a
//! local OCI layout), apply its layers with whiteouts, and write a sparse ext4 image.
