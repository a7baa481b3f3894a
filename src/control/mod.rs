//! Control plane: the tonic gRPC service and the read-only HTTP JSON API beside `/metrics`.

pub mod http;
