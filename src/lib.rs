//! Snag: a self-hosted, Sentry-compatible error tracker.
//!
//! Data flows one way: `ingest` → `event` → `grouping` → `pipeline` →
//! `store`; `web` reads from `store`.

pub mod alerts;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod event;
pub mod fuzz;
pub mod grouping;
pub mod ingest;
pub mod ops;
pub mod pipeline;
pub mod search;
pub mod store;
pub mod web;
