//! Answers that go on: watches (`?watch=1`: a JSON event per line, as Kubernetes streams
//! them, `ERROR` with a 410 `Status` when the revision asked for is gone) and `pods/log`
//! (the node's log stream relayed as the body). Each runs in its own task feeding the
//! body through a small channel; it ends when the client goes, at `timeoutSeconds`, or
//! when the source ends.

use super::fields::FieldSelector;
use super::route::{flag, param, Target};
use super::{failure, render, Body};
use crate::pki::Identity;
use crate::requests::Api;
use crate::store::{EventType, Store, StoreError, WatchFilter, WatchStream};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::Response;
use skiff_api::selector::Selector;
use skiff_api::wire::{ApiError, ErrorCode, LogsRequest, Request as ApiRequest, StreamFrame};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// A body fed by a task.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

fn streamed(content_type: &str, rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .header("transfer-encoding", "chunked")
        .body(ChannelBody(rx).boxed_unsync())
        .expect("a valid response")
}

/// How long a watch lasts unless `timeoutSeconds` says (Kubernetes spreads its own
/// between 30 and 60 minutes; clients start a new one from the last revision).
const WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, msg)
}

/// `GET ...?watch=1`.
pub(crate) async fn watch<S: Store>(
    api: &Arc<Api<S>>,
    id: &Identity,
    t: &Target,
    q: &[(String, String)],
    table: bool,
) -> Response<Body> {
    match start_watch(api, id, t, q, table).await {
        Ok(r) => r,
        Err(e) => failure(&e, None),
    }
}

async fn start_watch<S: Store>(
    api: &Arc<Api<S>>,
    id: &Identity,
    t: &Target,
    q: &[(String, String)],
    table: bool,
) -> Result<Response<Body>, ApiError> {
    api.authorize_watch(id, t.kind)?;
    let label_text = param(q, "labelSelector").filter(|s| !s.is_empty());
    let selector = match label_text {
        Some(s) => Selector::parse(s).map_err(|e| bad(e.to_string()))?,
        None => Selector::default(),
    };
    let fields =
        FieldSelector::parse(t.kind, param(q, "fieldSelector").unwrap_or("")).map_err(bad)?;
    let timeout = match param(q, "timeoutSeconds") {
        Some(s) => Duration::from_secs(
            s.parse::<u64>()
                .map_err(|_| bad(format!("timeoutSeconds: invalid value {s:?}")))?,
        ),
        None => WATCH_TIMEOUT,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let tables = table.then_some(Tables {
        kind: t.kind,
        headers_sent: false,
    });
    // No revision (or "0"): the current objects first, as ADDED, then what changes.
    // No revision (or "0"), or a streaming list (`sendInitialEvents=true`, what client-go's
    // informers ask for): the current objects first, as ADDED, then what changes.
    let streaming_list = flag(q, "sendInitialEvents");
    let rv = param(q, "resourceVersion").filter(|s| !s.is_empty() && *s != "0");
    let (since, initial) = match rv {
        Some(rv) if !streaming_list => (
            rv.parse::<u64>()
                .map_err(|_| bad(format!("resourceVersion: invalid value {rv:?}")))?,
            Vec::new(),
        ),
        _ => current(api, id, t, q).await?,
    };
    let filter = WatchFilter {
        kind: t.kind,
        namespace: t.namespace.clone(),
        selector,
    };
    let w = match api.store.watch(filter, since) {
        Ok(w) => Some(w),
        Err(e) => {
            let _ = tx.send(ended(e).into()).await;
            None
        }
    };
    if let Some(w) = w {
        let api = api.clone();
        let id = id.clone();
        let watch = Relay {
            fields,
            timeout,
            bookmarks: flag(q, "allowWatchBookmarks").then(|| bookmark_object(t.kind)),
            since,
            tables,
            initial,
            initial_end: streaming_list.then_some(t.kind),
        };
        tokio::spawn(async move { relay(&api, &id, w, watch, tx).await });
    }
    Ok(streamed("application/json", rx))
}

/// Every object a watch without a revision starts with (the pages of a list with the
/// watch's selectors), and the revision of the first page.
async fn current<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    q: &[(String, String)],
) -> Result<(u64, Vec<String>), ApiError> {
    let (revision, mut all, mut next) =
        super::listing::page(api, id, t, q, Some(500), None).await?;
    while let Some(from) = next {
        let (_, items, more) = super::listing::page(api, id, t, q, Some(500), Some(from)).await?;
        all.extend(items);
        next = more;
    }
    Ok((revision, all))
}

/// Events as Tables (`kubectl get -w`): each object a one-row Table, the column
/// definitions only on the first (as Kubernetes sends them).
struct Tables {
    kind: skiff_api::Kind,
    headers_sent: bool,
}

/// One event's line: the object as it is stored, or as a Table row.
fn event_line(event: &str, object: &str, tables: &mut Option<Tables>) -> String {
    let Some(t) = tables.as_mut() else {
        return render::watch_line(event, object);
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(object) else {
        return render::watch_line(event, object);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut table = render::table(t.kind, &[v], None, None, now);
    if t.headers_sent {
        table["columnDefinitions"] = serde_json::json!([]);
    }
    t.headers_sent = true;
    render::watch_line(event, &table.to_string())
}

/// The line that ends a watch the store ended: 410 (relist) or the error.
fn ended(e: StoreError) -> String {
    match e {
        StoreError::Expired { .. } => {
            render::expired_line(&format!("too old resource version: {e}"))
        }
        e => {
            let (_, s) = render::status(&crate::requests::store_err(e), None);
            render::watch_line("ERROR", &s.to_string())
        }
    }
}

/// How a watch relays: what it filters, how long it lasts, whether it sends bookmarks.
struct Relay {
    fields: FieldSelector,
    timeout: Duration,
    /// The kind's `{kind, apiVersion}`, when the client asked for bookmarks.
    bookmarks: Option<serde_json::Value>,
    since: u64,
    tables: Option<Tables>,
    /// The objects a watch without a revision starts with (sent as ADDED).
    initial: Vec<String>,
    /// After them, a bookmark of this kind marking their end (a streaming list asks for it).
    initial_end: Option<skiff_api::Kind>,
}

/// How long a watch with bookmarks goes quiet before it tells the client the revision it
/// has seen everything up to (Kubernetes sends one about a minute apart).
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

fn bookmark_object(kind: skiff_api::Kind) -> serde_json::Value {
    serde_json::json!({"kind": kind.info().name, "apiVersion": kind.info().api_version,
        "metadata": {"resourceVersion": ""}})
}

async fn relay<S: Store>(
    api: &Api<S>,
    id: &Identity,
    mut w: S::Watch,
    mut watch: Relay,
    tx: mpsc::Sender<Bytes>,
) {
    let fields = std::mem::take(&mut watch.fields);
    let deadline = tokio::time::sleep(watch.timeout);
    tokio::pin!(deadline);
    for item in std::mem::take(&mut watch.initial) {
        if !fields.is_empty() {
            match serde_json::from_str::<serde_json::Value>(&item) {
                Ok(v) if fields.matches(&v) => {}
                _ => continue,
            }
        }
        let line = event_line("ADDED", &item, &mut watch.tables);
        if tx.send(line.into()).await.is_err() {
            return;
        }
    }
    if let Some(kind) = watch.initial_end {
        let mut b = bookmark_object(kind);
        b["metadata"]["resourceVersion"] = watch.since.to_string().into();
        b["metadata"]["annotations"] = serde_json::json!({"k8s.io/initial-events-end": "true"});
        if tx
            .send(render::watch_line("BOOKMARK", &b.to_string()).into())
            .await
            .is_err()
        {
            return;
        }
    }
    // Every event up to this revision has been sent (or was not for this client).
    let mut seen = watch.since;
    loop {
        let quiet = tokio::time::sleep(BOOKMARK_EVERY);
        let ev = tokio::select! {
            ev = w.next() => ev,
            _ = tx.closed() => return,
            _ = &mut deadline => return,
            _ = quiet, if watch.bookmarks.is_some() => {
                if let Some(b) = watch.bookmarks.as_mut() {
                    b["metadata"]["resourceVersion"] = seen.to_string().into();
                    if tx.send(render::watch_line("BOOKMARK", &b.to_string()).into()).await.is_err() {
                        return;
                    }
                }
                continue;
            }
        };
        let e = match ev {
            Ok(e) => e,
            Err(e) => {
                let _ = tx.send(ended(e).into()).await;
                return;
            }
        };
        seen = e.revision;
        if !api.event_visible_to(id, &e) {
            continue;
        }
        if !fields.is_empty() {
            match serde_json::from_str::<serde_json::Value>(&e.object.json) {
                Ok(v) if fields.matches(&v) => {}
                _ => continue,
            }
        }
        let kind = match e.kind {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        };
        let line = event_line(kind, &e.object.json, &mut watch.tables);
        if tx.send(line.into()).await.is_err() {
            return;
        }
    }
}

/// `GET .../pods/{name}/log`: the node's log stream as the body.
pub(crate) async fn logs<S: Store>(
    api: &Arc<Api<S>>,
    id: &Identity,
    t: &Target,
    q: &[(String, String)],
) -> Response<Body> {
    match start_logs(api, id, t, q).await {
        Ok(r) => r,
        Err(e) => failure(&e, Some((t.kind, t.name.as_deref().unwrap_or("")))),
    }
}

async fn start_logs<S: Store>(
    api: &Arc<Api<S>>,
    id: &Identity,
    t: &Target,
    q: &[(String, String)],
) -> Result<Response<Body>, ApiError> {
    let positive = |name: &str| -> Result<Option<u64>, ApiError> {
        match param(q, name) {
            None => Ok(None),
            Some(n) => match n.parse::<u64>() {
                Ok(v) if v > 0 => Ok(Some(v)),
                _ => Err(bad(format!(
                    "{name}: Invalid value: {n:?}: must be greater than 0"
                ))),
            },
        }
    };
    let since = match (positive("sinceSeconds")?, param(q, "sinceTime")) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "at most one of sinceTime or sinceSeconds may be specified",
            ))
        }
        (Some(secs), None) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Some(now.saturating_sub(secs))
        }
        (None, Some(t)) => Some(skiff_api::util::parse_rfc3339(t).ok_or_else(|| {
            bad(format!(
                "sinceTime: Invalid value: {t:?}: not an RFC 3339 time"
            ))
        })?),
        (None, None) => None,
    };
    let limit_bytes = positive("limitBytes")?;
    let tail = match param(q, "tailLines") {
        Some(n) => Some(
            n.parse::<u64>()
                .map_err(|_| bad(format!("tailLines: invalid value {n:?}")))?,
        ),
        None => None,
    };
    let req = ApiRequest::Logs(LogsRequest {
        namespace: t.namespace.clone().unwrap_or_default(),
        pod: t.name.clone().unwrap_or_default(),
        container: param(q, "container").map(str::to_string),
        follow: flag(q, "follow"),
        tail,
        previous: flag(q, "previous"),
        timestamps: flag(q, "timestamps"),
        since,
        limit_bytes,
    });
    let (mut nsend, mut nrecv) = crate::server::open_to_node(api, id, &req).await?;
    let _ = nsend.finish();
    // The first frame says whether the node can serve the log at all.
    let first = read(&mut nrecv).await;
    if let Some(StreamFrame::Error(e)) = first {
        return Err(e);
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let mut next = first;
        while let Some(f) = next {
            let data = match f {
                StreamFrame::Stdout(b) | StreamFrame::Stderr(b) => b,
                _ => break,
            };
            tokio::select! {
                r = tx.send(data.into()) => if r.is_err() { break },
                _ = tx.closed() => break,
            }
            next = tokio::select! {
                f = read(&mut nrecv) => f,
                _ = tx.closed() => None,
            };
        }
        let _ = nrecv.stop(0u32.into());
    });
    Ok(streamed("text/plain", rx))
}

async fn read(r: &mut quinn::RecvStream) -> Option<StreamFrame> {
    skiff_transport::frames::read_frame::<StreamFrame, _>(r, skiff_api::wire::MAX_FRAME_LEN)
        .await
        .ok()
        .flatten()
}
