//! # pd — the placement driver
//!
//! This crate will hold (DESIGN.md, "PD"): cluster bootstrap, store and region metadata, the
//! persisted ID allocator, the batched TSO (`physical_ms << 18 | logical`), heartbeats, the
//! schedulers and operators, the `percore-pd` server binary and the PD client.
//!
//! Nothing is implemented yet: the issues "Wire protocol and PD core" and "PD scheduling"
//! build it.
