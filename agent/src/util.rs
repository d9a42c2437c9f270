//! Small helpers every part of the agent uses: blocking calls off the async threads, the
//! clock, randomness.

/// Runs a blocking runtime or image-store call off the async threads.
pub(crate) async fn blocking<T: Send + 'static, E: From<TaskFailed> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(f).await.map_err(TaskFailed)?
}

/// A blocking task that panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("blocking task: {0}")]
pub struct TaskFailed(#[from] tokio::task::JoinError);

/// The pod worker's steps report failures as the messages their Events and container
/// statuses carry.
impl From<TaskFailed> for String {
    fn from(e: TaskFailed) -> String {
        e.to_string()
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Random bytes from the kernel.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    b
}

/// `n` random hex digits.
pub fn random_hex(n: usize) -> String {
    let b = random_bytes::<16>();
    b.iter().map(|x| format!("{x:02x}")).collect::<String>()[..n.min(32)].to_string()
}
