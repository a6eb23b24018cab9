//! Real-client compatibility suite support for Tessera.
