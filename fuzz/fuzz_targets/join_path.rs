//! The join path, as a stranger reaches it: any bytes as a request frame read with the
//! join frame limit, decoded, and handled by a real `Api` (redb store, CA) as an
//! unauthenticated peer; and structured joins (a real token or not, any name, any CSR)
//! so the fuzzer gets past the token check to name validation and CSR parsing. Errors
//! are fine; panics, and anything but a refusal for a request a stranger may not make,
//! are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_api::wire::{decode_body, frame_len, Request, Response, MAX_JOIN_FRAME_LEN};
use skiff_coordinator::pki::{Identity, Pki};
use skiff_coordinator::requests::Api;
use skiff_coordinator::store::redb_store::{RedbOptions, RedbStore};
use std::sync::{Arc, OnceLock};

struct World {
    rt: tokio::runtime::Runtime,
    api: Arc<Api<RedbStore>>,
    token: String,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("skiff-fuzz-join-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (api, token) = rt.block_on(async {
            let store = RedbStore::open(&dir.join("store"), RedbOptions::default()).unwrap();
            let pki = Pki::load_or_create(&dir.join("pki"), &["localhost".into()]).unwrap();
            let cidr = skiff_coordinator::nodes::parse_cluster_cidr("10.42.0.0/16").unwrap();
            let api = Arc::new(Api {
                store,
                pki,
                nodes: skiff_coordinator::nodes::Nodes::new(cidr),
                pod_hub: Default::default(),
                services: Default::default(),
            });
            api.bootstrap().await.unwrap();
            let admin = Identity::Admin("fuzz".into());
            let token = match api
                .handle(
                    &admin,
                    Request::TokenCreate {
                        ttl_seconds: None,
                        uses: None,
                        description: "fuzz".into(),
                    },
                )
                .await
            {
                Response::Token { token, .. } => token,
                other => panic!("token: {other:?}"),
            };
            (api, token)
        });
        World { rt, api, token }
    })
}

fn stranger(w: &World, req: Request) {
    let may = matches!(req, Request::Join { .. } | Request::Version);
    let r = w.rt.block_on(w.api.handle(&Identity::Anonymous, req));
    if !may {
        assert!(matches!(r, Response::Error(_)), "a stranger got {r:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    match data.split_first() {
        // A frame as the coordinator reads it from a stranger.
        Some((0, rest)) if rest.len() >= 4 => {
            let header = [rest[0], rest[1], rest[2], rest[3]];
            if let Ok(len) = frame_len(header, MAX_JOIN_FRAME_LEN) {
                let body = &rest[4..];
                if body.len() >= len {
                    if let Ok(req) = decode_body::<Request>(&body[..len]) {
                        stranger(w, req);
                    }
                }
            }
        }
        // A join: [use the real token?] token \0 name \0 csr.
        Some((1, rest)) => {
            let text = String::from_utf8_lossy(rest);
            let mut parts = text.splitn(3, '\0');
            let (t, name, csr) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let token = if t.is_empty() { w.token.clone() } else { t.to_string() };
            stranger(
                w,
                Request::Join {
                    token,
                    node_name: name.to_string(),
                    csr_pem: csr.to_string(),
                },
            );
        }
        _ => {}
    }
});
