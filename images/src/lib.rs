//! skiff-images: the content-addressed OCI image store, registry pull and archive import.
//!
//! Empty so far: the runtime/images issue fills it. Nothing here claims to pull an image yet.
