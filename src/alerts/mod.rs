//! Alert rules, the delivery outbox worker, email and webhooks.

use crate::app::AppState;

/// Starts the background delivery worker(s). Returns immediately.
pub fn spawn(_state: &AppState) {}
