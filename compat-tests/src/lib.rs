//! Real-client compatibility suite support for Tessera.

pub mod bench;
