//! S3 load generator.

fn main() {}
