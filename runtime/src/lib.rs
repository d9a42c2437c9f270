//! skiff-runtime: pod sandboxes and containers on youki's libcontainer, with cgroups.
//!
//! Empty so far: the runtime issue fills it. Nothing here claims to run a container yet.
