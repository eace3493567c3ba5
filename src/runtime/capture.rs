//! Capture: a consistent read of a running sandbox's root filesystem, for a new snapshot.
//!
//! The sandbox's processes are frozen (cgroup freezer, `runc pause`) while the caller reads
//! a read-only overlay of the sandbox's layers as stored (owners as the image names them,
//! not the host ids of the sandbox's range), so no file changes half-way through the copy;
//! they are thawed afterwards whatever the reader did.

use std::future::Future;
use std::path::PathBuf;

use super::{ContainerState, Runtime, RuntimeError, layout, mount_table, rootfs};

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
        let layout = self.layout(id);
        // A view an interrupted capture left (the server died during the copy) goes first.
        for stale in mount_table::points_under(&layout.capture)
            .await?
            .into_iter()
            .rev()
        {
            let _ = rootfs::unmount_native_view_at(&stale).await;
        }
        let root = rootfs::mount_native_view(&layout).await?;
        let read = async {
            self.inner.runc.set_frozen(&container, true).await?;
            let out = read(root).await;
            self.inner.runc.set_frozen(&container, false).await?;
            Ok(out)
        }
        .await;
        if let Err(e) = rootfs::unmount_native_view_at(&layout.capture).await {
            // The read is done; the view goes at the latest when the sandbox stops.
            tracing::warn!(sandbox = %id, "unmounting a capture's view failed: {e}");
        }
        read
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
