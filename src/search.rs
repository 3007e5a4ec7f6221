//! Sentry-style issue search syntax, parsed into a typed query (pure code).
