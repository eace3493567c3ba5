//! Capture: a consistent read of a running sandbox's root filesystem, for a new snapshot.
//!
//! The sandbox's processes are frozen (cgroup freezer, `runc pause`) while the caller reads
//! the merged overlay as the host sees it, so no file changes half-way through the copy;
//! they are thawed afterwards whatever the reader did.

use std::future::Future;
use std::path::PathBuf;

use super::{ContainerState, Runtime, RuntimeError, layout};

impl Runtime {
    /// Freeze sandbox `id`, run `read` on its merged root filesystem (a host path), thaw it.
    /// The caller keeps start, stop and destroy of the sandbox from overlapping the read.
    pub async fn with_frozen_root<F, Fut, T>(&self, id: &str, read: F) -> Result<T, RuntimeError>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: Future<Output = T>,
    {
        layout::validate_id(id)?;
        let container = layout::container_id(id);
        if self.inner.runc.state(&container).await != ContainerState::Running {
            return Err(RuntimeError::NotRunning(id.to_string()));
        }
        self.inner.runc.set_frozen(&container, true).await?;
        let out = read(self.layout(id).rootfs).await;
        self.inner.runc.set_frozen(&container, false).await?;
        Ok(out)
    }
}

impl Runtime {
    /// Thaw a sandbox left frozen by a capture that never finished (the server died during
    /// the copy). A sandbox that is not frozen is left alone.
    pub async fn thaw(&self, id: &str) -> Result<(), RuntimeError> {
        layout::validate_id(id)?;
        let container = layout::container_id(id);
        if self.inner.runc.state(&container).await == ContainerState::Frozen {
            self.inner.runc.set_frozen(&container, false).await?;
        }
        Ok(())
    }
}
