//! Tessera S3 gateway.
