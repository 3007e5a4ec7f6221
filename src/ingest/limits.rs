//! Size and count limits for ingest, with Relay's defaults (protocol reference §6.1).
//!
//! Every field can be overridden with `SNAG_<FIELD NAME IN UPPER CASE>`, e.g.
//! `SNAG_MAX_ENVELOPE_SIZE=52428800` or `SNAG_MAX_EVENT_SIZE=2MiB`.

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

macro_rules! limits {
    ($( $(#[$doc:meta])* $field:ident = $default:expr ),* $(,)?) => {
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Limits {
            $( $(#[$doc])* pub $field: usize, )*
        }

        impl Default for Limits {
            fn default() -> Self {
                Limits { $( $field: $default, )* }
            }
        }

        impl Limits {
            /// Field names as used in `SNAG_MAX_*` variables (lower case).
            pub const FIELDS: &'static [&'static str] = &[$( stringify!($field), )*];

            fn set(&mut self, name: &str, value: usize) {
                match name {
                    $( stringify!($field) => self.$field = value, )*
                    _ => {}
                }
            }
        }
    };
}

limits! {
    /// Decompressed `/envelope/` body.
    max_envelope_size = 200 * MIB,
    /// Raw (still compressed) request body as read off the socket, any endpoint. Uncompressed
    /// envelopes (sentry-rust, browsers) arrive at full size, so this defaults to
    /// `max_envelope_size`.
    max_compressed_body = 200 * MIB,
    /// Tighter raw-body cap for `/store/` and `/security/` (see `store_body_limit`). Base64
    /// (old raven) inflates a body by 4/3, hence more than `max_event_size`.
    max_compressed_store_size = 2 * MIB,
    /// One event / transaction / security / feedback / replay_event item; also the decoded
    /// store body.
    max_event_size = MIB,
    max_attachment_size = 200 * MIB,
    max_attachments_size = 200 * MIB,
    max_attachment_count = 30,
    /// `session` + `sessions` items per envelope.
    max_session_count = 100,
    max_sessions_size = 10 * MIB,
    max_client_reports_count = 100,
    max_client_reports_size = 100 * KIB,
    max_check_in_size = 100 * KIB,
    max_profile_size = 50 * MIB,
    max_log_size = 2 * MIB,
    max_span_size = 10 * MIB,
    max_container_size = 12 * MIB,
    max_replay_compressed_size = 10 * MIB,
    max_replay_uncompressed_size = 100 * MIB,
    max_statsd_size = MIB,
    max_metric_buckets_size = MIB,
    /// Not in Relay: caps per-item bookkeeping so a 200 MiB body of tiny items cannot make the
    /// parser allocate millions of header maps.
    max_envelope_items = 10_000,
    /// Not in Relay: request bodies (raw and decompressed) held in memory at once across all
    /// requests; past it ingest answers 503 and the SDK retries later.
    max_buffered_bodies = 1024 * MIB,
}

impl Limits {
    pub fn from_env() -> Result<Self, String> {
        Self::with_overrides(|name| std::env::var(name).ok())
    }

    /// `lookup` receives full variable names (`SNAG_MAX_EVENT_SIZE`); `None` keeps the default.
    pub fn with_overrides(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut limits = Limits::default();
        for field in Self::FIELDS {
            let var = format!("SNAG_{}", field.to_ascii_uppercase());
            if let Some(raw) = lookup(&var) {
                let value = parse_size(&raw).map_err(|e| format!("{var}: {e}"))?;
                limits.set(field, value);
            }
        }
        Ok(limits)
    }

    /// Cap for the decompressed `/envelope/` body (pass to `decode_body`).
    pub fn envelope_decode_limit(&self) -> usize {
        self.max_envelope_size
    }

    /// Cap for the decoded `/store/` body (pass to `decode_body` and `decode_store_body`).
    pub fn store_decode_limit(&self) -> usize {
        self.max_event_size
    }

    /// Cap for reading the raw `/envelope/` request body.
    pub fn envelope_body_limit(&self) -> usize {
        self.max_compressed_body
    }

    /// Cap for reading the raw `/store/` / `/security/` request body: a store body decodes to
    /// at most `max_event_size`, so reading 200 MiB of it would only waste memory.
    pub fn store_body_limit(&self) -> usize {
        self.max_compressed_store_size.min(self.max_compressed_body)
    }
}

/// Bytes, optionally with a binary suffix (`KiB`, `MiB`, `GiB`, or `K`/`M`/`G`); `_` allowed as
/// a digit separator.
fn parse_size(raw: &str) -> Result<usize, String> {
    let s = raw.trim();
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '_'));
    let (num, suffix) = s.split_at(digits_end.unwrap_or(s.len()));
    let num: String = num.chars().filter(|c| *c != '_').collect();
    if num.is_empty() {
        return Err(format!("invalid byte size '{raw}'"));
    }
    let n: usize = num
        .parse()
        .map_err(|_| format!("invalid byte size '{raw}'"))?;
    let mult = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => KIB,
        "m" | "mib" | "mb" => MIB,
        "g" | "gib" | "gb" => 1024 * MIB,
        _ => return Err(format!("invalid byte size '{raw}'")),
    };
    let v = n
        .checked_mul(mult)
        .ok_or_else(|| format!("byte size '{raw}' is too large"))?;
    if v == 0 {
        // A zero limit would silently reject all traffic; almost certainly a typo.
        return Err(format!("byte size '{raw}' must be positive"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn relay_defaults() {
        let l = Limits::default();
        assert_eq!(l.max_envelope_size, 200 * 1024 * 1024);
        assert_eq!(l.max_event_size, 1024 * 1024);
        assert_eq!(l.max_attachment_size, 200 * 1024 * 1024);
        assert_eq!(l.max_attachments_size, 200 * 1024 * 1024);
        assert_eq!(l.max_session_count, 100);
        assert_eq!(l.max_client_reports_size, 100 * 1024);
        assert_eq!(l.max_check_in_size, 100 * 1024);
        assert_eq!(l.max_profile_size, 50 * 1024 * 1024);
        assert_eq!(l.envelope_decode_limit(), l.max_envelope_size);
        assert_eq!(l.store_decode_limit(), l.max_event_size);
        assert_eq!(l.envelope_body_limit(), l.max_compressed_body);
        assert_eq!(l.store_body_limit(), l.max_compressed_store_size);
    }

    #[test]
    fn overrides() {
        let env: HashMap<&str, &str> = [
            ("SNAG_MAX_ENVELOPE_SIZE", "1048576"),
            ("SNAG_MAX_EVENT_SIZE", "2MiB"),
            ("SNAG_MAX_SESSION_COUNT", "5"),
            ("SNAG_MAX_CHECK_IN_SIZE", " 64k "),
            ("SNAG_MAX_ATTACHMENT_SIZE", "1_000"),
            ("UNRELATED", "x"),
        ]
        .into_iter()
        .collect();
        let l = Limits::with_overrides(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(l.max_envelope_size, 1024 * 1024);
        assert_eq!(l.max_event_size, 2 * 1024 * 1024);
        assert_eq!(l.max_session_count, 5);
        assert_eq!(l.max_check_in_size, 64 * 1024);
        assert_eq!(l.max_attachment_size, 1000);
        assert_eq!(l.max_profile_size, Limits::default().max_profile_size);
    }

    #[test]
    fn bad_overrides_name_the_variable() {
        for bad in ["abc", "", "-5", "0", "12XB", "99999999999999999999999G"] {
            let err =
                Limits::with_overrides(|k| (k == "SNAG_MAX_EVENT_SIZE").then(|| bad.to_string()))
                    .unwrap_err();
            assert!(err.starts_with("SNAG_MAX_EVENT_SIZE:"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_field_is_overridable() {
        for field in Limits::FIELDS {
            let var = format!("SNAG_{}", field.to_ascii_uppercase());
            let l = Limits::with_overrides(|k| (k == var).then(|| "7".to_string())).unwrap();
            assert_ne!(l, Limits::default(), "{var} had no effect");
        }
    }
}
