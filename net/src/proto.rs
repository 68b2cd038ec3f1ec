//! Generated protobuf types (prost), one module per `.proto` package.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Cluster metadata: regions, peers, stores.
pub mod metapb {
    include!(concat!(env!("OUT_DIR"), "/metapb.rs"));
}
/// Typed region errors.
pub mod errorpb {
    include!(concat!(env!("OUT_DIR"), "/errorpb.rs"));
}
/// The raw KV API.
pub mod kvrpcpb {
    include!(concat!(env!("OUT_DIR"), "/kvrpcpb.rs"));
}
/// The PD service.
pub mod pdpb {
    include!(concat!(env!("OUT_DIR"), "/pdpb.rs"));
}
/// The store-to-store raft transport.
pub mod raft_serverpb {
    include!(concat!(env!("OUT_DIR"), "/raft_serverpb.rs"));
}
/// The frame envelope and the method table.
pub mod rpcpb {
    include!(concat!(env!("OUT_DIR"), "/rpcpb.rs"));
}
/// Commands replicated through raft.
pub mod raft_cmdpb {
    include!(concat!(env!("OUT_DIR"), "/raft_cmdpb.rs"));
}
/// Operator and debug requests to stores.
pub mod adminpb {
    include!(concat!(env!("OUT_DIR"), "/adminpb.rs"));
}
pub use raft::eraftpb;
