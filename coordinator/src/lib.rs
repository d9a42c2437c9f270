//! skiff's control plane: the store and the API server (the scheduler and controllers
//! arrive with their issue).

pub mod store;
