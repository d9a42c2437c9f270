//! Any bytes into the frame decoder, in pieces, and straight into the message decoders:
//! errors are fine, panics and unbounded allocation are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_api::wire::{decode_body, FrameDecoder, Request, Response, WatchEvent};

fuzz_target!(|data: &[u8]| {
    let mut d = FrameDecoder::new(1 << 16);
    for chunk in data.chunks(7) {
        if d.push(chunk).is_err() {
            break;
        }
        while let Ok(Some(_)) = d.next_frame::<Request>() {}
    }
    let _ = d.finish();
    let _ = decode_body::<Request>(data);
    let _ = decode_body::<Response>(data);
    let _ = decode_body::<WatchEvent>(data);
});
