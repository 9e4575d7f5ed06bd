//! The example gateway, as a library so that its tests can run it over loopback: config file
//! parsing ([`config`]) and the axum router that serves the OpenAI- and Anthropic-compatible
//! endpoints through an infergate [`Pipeline`](infergate::core::Pipeline) ([`gateway`]); and
//! the same building blocks composed in plain hyper, axum and pingora ([`compositions`]).

pub mod compositions;
pub mod config;
pub mod gateway;
