//! sentry-python-shaped events and envelopes.
//!
//! Modelled on a captured sentry-sdk 2.75 envelope: one exception with an
//! eight-frame stack (four lines of context either side, local variables),
//! ten breadcrumbs, a request, contexts, tags, user, modules and sdk info,
//! 5–8 KB of JSON. Recurring bugs keep their type and stack and vary only
//! the values in the message (ids, amounts), so a Sentry-style grouper puts
//! every occurrence in one issue; unique bugs get a new type and a new
//! in-app function, so they open a new issue each.
//!
//! A recurring bug's message also carries a letters-only word of its own
//! (its "name"), because message-based groupers (Bugsink's, which turns
//! numbers, quoted strings and addresses into placeholders) would otherwise
//! merge bugs that share a type and a message template; with it, every
//! grouper sees the same number of bugs.

use crate::spread::Zipf;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;

/// A small deterministic PRNG (xorshift64*), so a seed reproduces a run.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() <= p
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn uuid(&mut self) -> uuid::Uuid {
        let bytes = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        uuid::Builder::from_random_bytes(bytes.to_le_bytes()).into_uuid()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// gzip level 9, sentry-python's default without `brotli` installed.
    Gzip,
    /// brotli quality 4, sentry-python's default with `brotli` installed.
    Br,
    /// Alternate gzip and br per event.
    Mix,
    None,
}

impl Compression {
    fn pick(self, n: usize) -> Option<&'static str> {
        match self {
            Compression::Gzip => Some("gzip"),
            Compression::Br => Some("br"),
            Compression::Mix => Some(if n.is_multiple_of(2) { "gzip" } else { "br" }),
            Compression::None => None,
        }
    }
}

pub struct Mix {
    pub bugs: usize,
    pub unique_fraction: f64,
    /// When set, bugs follow a power law over a fixed number of issues
    /// (no unique bugs; `bugs` and `unique_fraction` are ignored) and
    /// releases, users and tags are spread like a real project's.
    pub zipf: Option<Arc<Zipf>>,
}

const SYLLABLE_CONSONANTS: &[u8] = b"klmnprstvz";
const SYLLABLE_VOWELS: &[u8] = b"aiou";

/// A pronounceable letters-only name for bug `b`, unique per bug. The
/// letters avoid a–f runs, so no grouper mistakes it for a hex id.
pub fn bug_word(b: usize) -> String {
    let base = SYLLABLE_CONSONANTS.len() * SYLLABLE_VOWELS.len();
    let mut rest = b;
    let mut word = String::new();
    let mut syllables = 0;
    while syllables < 3 || rest > 0 {
        let s = rest % base;
        rest /= base;
        word.push(SYLLABLE_CONSONANTS[s % SYLLABLE_CONSONANTS.len()] as char);
        word.push(SYLLABLE_VOWELS[s / SYLLABLE_CONSONANTS.len()] as char);
        syllables += 1;
    }
    word
}

/// One prepared request.
pub struct Prepared {
    pub body: bytes::Bytes,
    pub encoding: Option<&'static str>,
    pub raw_len: usize,
}

const MODULES: &[&str] = &[
    "shop",
    "orders",
    "payments",
    "inventory",
    "accounts",
    "catalog",
    "shipping",
    "search",
];
const FUNCTIONS: &[&str] = &[
    "handle",
    "process",
    "charge",
    "reserve",
    "lookup",
    "validate",
    "render",
    "dispatch",
    "load",
    "save",
    "compute_total",
    "apply_discount",
];
const TYPES: &[&str] = &[
    "KeyError",
    "ValueError",
    "TypeError",
    "AttributeError",
    "ZeroDivisionError",
    "RuntimeError",
    "LookupError",
    "ConnectionError",
    "TimeoutError",
    "PermissionError",
];

fn context_lines(rng: &mut Rng, function: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let line = match (rng.below(4), i) {
                (0, _) => format!("    r = {function}(o, n={})", rng.below(5)),
                (1, _) => "    if not o.items:".to_string(),
                (2, _) => format!("        log.info(\"step {i}\")"),
                _ => "    total += it.price".to_string(),
            };
            Value::String(line)
        })
        .collect()
}

/// A frame's source lines come from the bug's own stack (they are the same
/// code every time); its local variables come from the event.
fn frame(
    rng: &mut Rng,
    source: &mut Rng,
    module: &str,
    function: &str,
    lineno: u64,
    in_app: bool,
) -> Value {
    let filename = format!(
        "{}/{module}.py",
        if in_app { "shop" } else { "site-packages/lib" }
    );
    json!({
        "filename": filename,
        "abs_path": format!("/srv/app/{filename}"),
        "module": format!("{}.{module}", if in_app { "shop" } else { "lib" }),
        "function": function,
        "lineno": lineno,
        "pre_context": context_lines(source, function, 4),
        "context_line": format!("    return {function}(order)"),
        "post_context": context_lines(source, function, 4),
        "in_app": in_app,
        "vars": {
            "order": format!("<Order {}>", rng.below(1_000_000)),
            "retries": rng.below(5).to_string(),
        },
    })
}

fn breadcrumbs(rng: &mut Rng, ts: f64) -> Vec<Value> {
    (0..10)
        .map(|i| {
            let at = ts - 10.0 + i as f64;
            if i % 3 == 0 {
                json!({"type": "default", "category": "query", "level": "info", "timestamp": at,
                       "message": format!("SELECT id, total FROM orders WHERE customer_id = {}", rng.below(50_000))})
            } else if i % 3 == 1 {
                json!({"type": "http", "category": "httplib", "level": "info", "timestamp": at,
                       "data": {"url": "http://inventory.internal/api/stock", "method": "GET", "status_code": 200, "reason": "OK"}})
            } else {
                json!({"type": "log", "category": "shop.orders", "level": "info", "timestamp": at,
                       "message": format!("order {} moved to state paid", rng.below(1_000_000))})
            }
        })
        .collect()
}

/// The event JSON for request number `n`.
pub fn event(rng: &mut Rng, mix: &Mix, n: usize, event_id: &str, now: f64) -> Value {
    let bug = match &mix.zipf {
        Some(zipf) => Some(zipf.bug(rng, n)),
        None => {
            if rng.chance(mix.unique_fraction) {
                None
            } else {
                Some(rng.below(mix.bugs.max(1) as u64) as usize)
            }
        }
    };
    // A bug's identity is its stack; recurring bugs derive it from their
    // number, so every occurrence has the same frames.
    let mut stack_rng = Rng::new(match bug {
        Some(b) => b as u64 + 1,
        None => rng.next_u64(),
    });
    let exc_type = match bug {
        Some(b) => TYPES[b % TYPES.len()].to_string(),
        None => format!("UniqueError{n}x{}", rng.below(1_000_000)),
    };
    let mut frames = Vec::with_capacity(8);
    for depth in 0..8 {
        let in_app = depth >= 3;
        let module = MODULES[stack_rng.below(MODULES.len() as u64) as usize];
        let function = if depth == 7 && bug.is_none() {
            format!("unique_handler_{n}")
        } else {
            FUNCTIONS[stack_rng.below(FUNCTIONS.len() as u64) as usize].to_string()
        };
        let lineno = 10 + stack_rng.below(400);
        frames.push(frame(
            rng,
            &mut stack_rng,
            module,
            &function,
            lineno,
            in_app,
        ));
    }
    let value = match bug.map(|b| b % 4) {
        Some(0) => format!("'sku-{}'", rng.below(100_000)),
        Some(1) => format!(
            "invalid literal for int() with base 10: '{}'",
            rng.below(1000)
        ),
        Some(2) => format!(
            "order {} failed after {} ms",
            rng.below(1_000_000),
            rng.below(5000)
        ),
        Some(_) => format!(
            "could not reach 10.0.{}.{}:5432",
            rng.below(255),
            rng.below(255)
        ),
        None => "something unexpected happened".to_string(),
    };
    let value = match bug {
        Some(b) => format!("{value} in {}", bug_word(b)),
        None => value,
    };
    let spread = match &mix.zipf {
        Some(zipf) => zipf.attributes(rng),
        None => {
            let user_id = rng.below(5000);
            let tier = ["free", "pro", "enterprise"][rng.below(3) as usize];
            let region = ["eu-west", "us-east", "ap-south"][rng.below(3) as usize];
            let server = format!("web-{}", rng.below(8));
            let release = format!("shop@1.{}.{}", rng.below(3), rng.below(10));
            let environment = if rng.chance(0.8) {
                "production"
            } else {
                "staging"
            };
            let feature_flag = format!("checkout-v{}", rng.below(3));
            crate::spread::Attributes {
                user_id,
                server,
                release,
                environment,
                tags: json!({"customer_tier": tier, "region": region, "feature_flag": feature_flag}),
            }
        }
    };
    let user_id = spread.user_id;
    json!({
        "event_id": event_id,
        "level": "error",
        "platform": "python",
        "timestamp": now,
        "logger": "shop.orders",
        "server_name": spread.server,
        "release": spread.release,
        "environment": spread.environment,
        "transaction": format!("/orders/{{order_id}}/{}", FUNCTIONS[rng.below(FUNCTIONS.len() as u64) as usize]),
        "exception": {"values": [{
            "type": exc_type,
            "value": value,
            "module": null,
            "mechanism": {"type": "django", "handled": false},
            "stacktrace": {"frames": frames},
        }]},
        "breadcrumbs": {"values": breadcrumbs(rng, now)},
        "request": {
            "url": format!("https://shop.example.com/orders/{}/checkout", rng.below(1_000_000)),
            "method": "POST",
            "query_string": format!("ref=mail&campaign={}", rng.below(40)),
            "headers": {
                "Host": "shop.example.com",
                "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "X-Request-Id": rng.uuid().simple().to_string(),
            },
            "data": {"coupon": "", "items": rng.below(9) + 1, "express": rng.chance(0.3)},
        },
        "user": {"id": user_id.to_string(), "email": format!("user{user_id}@example.com"), "ip_address": "{{auto}}"},
        "tags": spread.tags,
        "contexts": {
            "trace": {"trace_id": rng.uuid().simple().to_string(), "span_id": format!("{:016x}", rng.next_u64()), "op": "http.server", "status": "internal_error"},
            "runtime": {"name": "CPython", "version": "3.11.7", "build": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]"},
            "os": {"name": "Linux", "version": "6.1.0"},
        },
        "extra": {"sys.argv": ["gunicorn", "shop.wsgi"], "attempt": rng.below(3)},
        "modules": {"django": "5.2.19", "sentry-sdk": "2.75.0", "psycopg": "3.3.9", "requests": "2.34.2", "celery": "5.5.3", "redis": "6.2.0", "gunicorn": "23.0.0"},
        "sdk": {"name": "sentry.python.django", "version": "2.75.0",
                "packages": [{"name": "pypi:sentry-sdk", "version": "2.75.0"}],
                "integrations": ["argv", "atexit", "dedupe", "django", "excepthook", "logging", "modules", "stdlib", "threading"]},
    })
}

/// The envelope as sentry-python frames it: header, item header with
/// length, payload.
pub fn envelope(event: &Value, event_id: &str, public_key: &str, sent_at: &str) -> Vec<u8> {
    let payload = serde_json::to_vec(event).expect("event serialises");
    let header = json!({
        "event_id": event_id,
        "sent_at": sent_at,
        "trace": {"trace_id": event["contexts"]["trace"]["trace_id"], "environment": event["environment"],
                  "release": event["release"], "public_key": public_key, "sample_rate": "1.0"},
    });
    let item =
        json!({"type": "event", "content_type": "application/json", "length": payload.len()});
    let mut out = serde_json::to_vec(&header).expect("header serialises");
    out.push(b'\n');
    out.extend(serde_json::to_vec(&item).expect("item serialises"));
    out.push(b'\n');
    out.extend(payload);
    out
}

pub fn compress(raw: &[u8], encoding: Option<&str>) -> Vec<u8> {
    match encoding {
        Some("gzip") => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
            e.write_all(raw).expect("in-memory write");
            e.finish().expect("in-memory write")
        }
        Some("br") => {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams {
                quality: 4,
                ..Default::default()
            };
            brotli::BrotliCompress(&mut &raw[..], &mut out, &params).expect("in-memory write");
            out
        }
        _ => raw.to_vec(),
    }
}

pub fn prepare(
    seed: u64,
    mix: &Mix,
    compression: Compression,
    public_key: &str,
    n: usize,
    now: f64,
) -> Prepared {
    let mut rng = Rng::new(seed ^ (n as u64).wrapping_mul(0x100_0000_01B3));
    let event_id = rng.uuid().simple().to_string();
    let event = event(&mut rng, mix, n, &event_id, now);
    let raw = envelope(&event, &event_id, public_key, "2026-12-01T00:00:00.000000Z");
    let encoding = compression.pick(n);
    Prepared {
        body: compress(&raw, encoding).into(),
        encoding,
        raw_len: raw.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_sentry_python_sized() {
        let mix = Mix {
            bugs: 50,
            unique_fraction: 0.1,
            zipf: None,
        };
        let sizes: Vec<usize> = (0..200)
            .map(|n| prepare(7, &mix, Compression::None, "k", n, 1.7e9).raw_len)
            .collect();
        let avg = sizes.iter().sum::<usize>() / sizes.len();
        assert!((5000..=8000).contains(&avg), "average envelope {avg} B");
        eprintln!("average envelope {avg} B");
    }

    #[test]
    fn bug_words_are_unique_letters() {
        let words: std::collections::HashSet<String> = (0..70_000).map(bug_word).collect();
        assert_eq!(words.len(), 70_000);
        for w in &words {
            assert!(
                w.len() >= 6 && w.bytes().all(|b| b.is_ascii_lowercase()),
                "{w}"
            );
        }
    }

    /// A message grouper that replaces numbers, quoted strings and
    /// addresses (as Bugsink's does) still tells every recurring bug apart.
    #[test]
    fn message_groupers_see_every_bug() {
        let mix = Mix {
            bugs: 50,
            unique_fraction: 0.0,
            zipf: None,
        };
        let mut keys = std::collections::HashSet::new();
        for n in 0..2_000 {
            let mut rng = Rng::new(n as u64);
            let e = event(&mut rng, &mix, n, "x", 0.0);
            let exc = &e["exception"]["values"][0];
            let mut value = String::new();
            let mut quoted = false;
            for c in exc["value"].as_str().unwrap().chars() {
                if c == '\'' {
                    quoted = !quoted;
                } else if !quoted && !c.is_ascii_digit() && c != '.' && c != ':' {
                    value.push(c);
                }
            }
            keys.insert(format!("{}|{value}", exc["type"].as_str().unwrap()));
        }
        assert_eq!(keys.len(), 50);
    }

    #[test]
    fn recurring_bugs_keep_their_stack() {
        let mix = Mix {
            bugs: 1,
            unique_fraction: 0.0,
            zipf: None,
        };
        let frames = |n| {
            let mut rng = Rng::new(n);
            let e = event(&mut rng, &mix, n as usize, "x", 0.0);
            e["exception"]["values"][0]["stacktrace"]["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["function"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(frames(1), frames(2));
    }
}
