//! The node's part of the built-in `local-path` provisioner. The coordinator provisions a
//! volume as a directory on this node (`<--local-path-dir>/pvc-<uid>_<namespace>_<claim>`,
//! made by the runtime when a pod first mounts it). When such a volume is deleted (its
//! claim gone, reclaim policy `Delete`), the volume waits on the node's cleanup finalizer:
//! the agent removes the directory, then the finalizer, and the volume goes.

use crate::state::Agent;
use skiff_api::storage::{PersistentVolume, LOCAL_PATH_CLEANUP, PROVISIONED_NODE};
use skiff_api::wire::{Request, Response};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The directory to remove, if the volume is this node's and its path has the shape the
/// provisioner gives (`…/<volume name>_<namespace>_<claim>`): nothing else is ever removed.
pub fn directory_of<'a>(pv: &'a PersistentVolume, node: &str) -> Option<&'a Path> {
    if pv
        .metadata
        .annotations
        .get(PROVISIONED_NODE)
        .map(String::as_str)
        != Some(node)
    {
        return None;
    }
    let path = Path::new(pv.path()?);
    let file = path.file_name()?.to_str()?;
    let prefix = format!("{}_", pv.metadata.name());
    (path.is_absolute() && file.starts_with(&prefix) && !pv.metadata.name().is_empty())
        .then_some(path)
}

async fn clean(agent: &Arc<Agent>, pv: &PersistentVolume) -> Result<(), String> {
    let Some(dir) = directory_of(pv, &agent.cfg.name) else {
        return Ok(());
    };
    let owned = dir.to_path_buf();
    crate::util::blocking(move || match std::fs::remove_dir_all(&owned) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("removing {}: {e}", owned.display()))
        }
        _ => Ok(()),
    })
    .await?;
    tracing::info!(volume = pv.metadata.name(), dir = %dir.display(), "removed the volume's directory");
    let Some(client) = agent.client() else {
        return Err("not connected".into());
    };
    let mut next = pv.clone();
    next.metadata.finalizers.retain(|f| f != LOCAL_PATH_CLEANUP);
    let object = serde_json::to_string(&next).map_err(|e| e.to_string())?;
    match client
        .call(&Request::Update {
            object,
            status: false,
        })
        .await
    {
        Ok(Response::Object { .. }) => Ok(()),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Cleans up this node's deleted volumes as the view shows them; tries again every 30 s
/// while one fails (the coordinator unreachable, say).
pub async fn run(agent: Arc<Agent>) {
    let mut rx = agent.cluster.subscribe();
    loop {
        let todo: Vec<PersistentVolume> = rx
            .borrow_and_update()
            .volumes
            .values()
            .filter(|pv| directory_of(pv, &agent.cfg.name).is_some())
            .cloned()
            .collect();
        let mut failed = false;
        for pv in &todo {
            if let Err(e) = clean(&agent, pv).await {
                tracing::warn!(volume = pv.metadata.name(), error = %e, "cannot clean up the volume");
                failed = true;
            }
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(Duration::from_secs(30)), if failed => {}
        }
    }
}
