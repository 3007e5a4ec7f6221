//! Robustness harness: every protocol-layer entry point on arbitrary bytes.
//!
//! `fuzz_exercise` is shaped for a `cargo fuzz` target (`fuzz_target!(|d: &[u8]| fuzz_exercise(d))`);
//! the test below runs it under a deterministic mutation loop so the regular test command
//! covers it without extra tooling. It also holds the captured-SDK-request fixture tests,
//! since those are the fuzz corpus.

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use super::auth::{extract_auth, parse_dsn, reconcile};
use super::decode::{
    ContentEncoding, content_encoding_from_headers, decode_body, decode_store_body,
    needs_python_json_repair, repair_python_json,
};
use super::envelope::{parse_envelope, validate_item_counts};
use super::limits::Limits;
use super::ratelimit::{KeyRateLimiter, format_rate_limits};

/// Small enough that a mutated bomb costs little per iteration.
const FUZZ_DECODE_LIMIT: usize = 256 * 1024;

const ALL_ENCODINGS: [ContentEncoding; 5] = [
    ContentEncoding::Identity,
    ContentEncoding::Gzip,
    ContentEncoding::Deflate,
    ContentEncoding::Brotli,
    ContentEncoding::Zstd,
];

/// Runs the parsers, decoders and auth extraction on `data`. Must never panic; results are
/// ignored, only crashes matter.
pub fn fuzz_exercise(data: &[u8]) {
    let limits = Limits::default();
    let body = Bytes::copy_from_slice(data);

    exercise_envelope(body.clone(), &limits);

    for enc in ALL_ENCODINGS {
        if let Ok(decoded) = decode_body(body.clone(), &[enc], FUZZ_DECODE_LIMIT)
            && enc != ContentEncoding::Identity
        {
            // Compressed seeds mutate into compressed inputs; push what comes out further in.
            exercise_envelope(decoded.clone(), &limits);
            let _ = decode_store_body(decoded, FUZZ_DECODE_LIMIT);
        }
    }
    let _ = decode_body(
        body.clone(),
        &[ContentEncoding::Gzip, ContentEncoding::Brotli],
        FUZZ_DECODE_LIMIT,
    );
    if let Ok(decoded) = decode_store_body(body.clone(), FUZZ_DECODE_LIMIT) {
        let repaired = repair_python_json(&decoded);
        let _ = serde_json::from_slice::<serde_json::Value>(&repaired);
    }
    let repaired = repair_python_json(data);
    let _ = serde_json::from_slice::<serde_json::Value>(&repaired);

    let text = String::from_utf8_lossy(data);
    let _ = parse_dsn(&text);
    let _ = reconcile(None, Some(&text));
    let _ = needs_python_json_repair(Some(&text));
    let _ = extract_auth(&HeaderMap::new(), Some(&text));
    if let Ok(value) = HeaderValue::from_bytes(data) {
        for name in ["x-sentry-auth", "authorization", "content-encoding"] {
            let mut headers = HeaderMap::new();
            headers.insert(name, value.clone());
            let _ = extract_auth(&headers, Some(&text));
            let _ = content_encoding_from_headers(&headers);
        }
    }
    let _ = Limits::with_overrides(|_| Some(text.to_string()));
    let rl = KeyRateLimiter::with_capacity(4);
    let n = data.first().copied().unwrap_or(0);
    let _ = rl.check(&text, u32::from(n), u32::from(n / 2), Instant::now());
    let _ = format_rate_limits(u64::from(n), &[&text], &text, Some(&text));
}

fn exercise_envelope(body: Bytes, limits: &Limits) {
    if let Ok(env) = parse_envelope(body) {
        let _ = validate_item_counts(&env, limits);
        let _ = env.requires_event_id();
        for item in &env.items {
            let _ = item.headers.ty.rate_limit_category();
            let _ = item.headers.ty.is_event_class();
        }
        if let Some(dsn) = env.headers.dsn.as_deref() {
            let _ = reconcile(None, Some(dsn));
        }
    }
}

/// Captured requests from real SDKs (`testdata/captured/*.body` + `.json` metadata).
#[cfg(test)]
pub(crate) mod fixtures {
    macro_rules! captured {
        ($($name:literal),* $(,)?) => {
            &[$((
                $name,
                include_bytes!(concat!("testdata/captured/", $name, ".body")).as_slice(),
                include_str!(concat!("testdata/captured/", $name, ".json")),
            )),*]
        };
    }

    /// (name, raw body as sent, request metadata JSON)
    pub(crate) const CAPTURED: &[(&str, &[u8], &str)] = captured![
        "raven-python-00",
        "raven-python-01",
        "raven-python-02",
        "sentry-node-00",
        "sentry-node-01",
        "sentry-node-02",
        "sentry-python-br-00",
        "sentry-python-br-01",
        "sentry-python-br-02",
        "sentry-python-br-03",
        "sentry-python-br-04",
        "sentry-python-gzip-00",
        "sentry-python-gzip-01",
        "sentry-python-gzip-02",
        "sentry-python-gzip-03",
        "sentry-python-gzip-04",
    ];
}

#[cfg(test)]
mod tests {
    use super::super::envelope::ItemType;
    use super::fixtures::CAPTURED;
    use super::*;
    use base64::Engine as _;
    use std::io::Write;

    const KEY: &str = "e12d836b15bb49d7bbf99e64295d995b";

    struct Request {
        path: String,
        query: Option<String>,
        headers: HeaderMap,
    }

    fn request(meta: &str) -> Request {
        let meta: serde_json::Value = serde_json::from_str(meta).unwrap();
        let full = meta["path"].as_str().unwrap();
        let (path, query) = match full.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (full.to_owned(), None),
        };
        let mut headers = HeaderMap::new();
        for (k, v) in meta["headers"].as_object().unwrap() {
            headers.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.as_str().unwrap().parse().unwrap(),
            );
        }
        Request {
            path,
            query,
            headers,
        }
    }

    /// What a handler does with each captured request: auth, decode, parse.
    #[test]
    fn captured_sdk_requests_decode_and_parse() {
        let limits = Limits::default();
        let mut envelopes = 0;
        let mut stores = 0;
        for (name, body, meta) in CAPTURED {
            let req = request(meta);
            let auth = extract_auth(&req.headers, req.query.as_deref())
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let encodings = content_encoding_from_headers(&req.headers).unwrap();
            let body = Bytes::from_static(body);

            if req.path.ends_with("/store/") {
                stores += 1;
                let auth = auth.expect("raven authenticates with a header");
                assert_eq!(auth.public_key, KEY);
                assert_eq!(auth.version, Some(6), "{name}");
                assert_eq!(encodings, vec![ContentEncoding::Deflate], "{name}");
                let decoded = decode_body(body, &encodings, limits.store_decode_limit()).unwrap();
                let decoded = decode_store_body(decoded, limits.store_decode_limit()).unwrap();
                assert!(needs_python_json_repair(auth.client.as_deref()));
                let json = repair_python_json(&decoded);
                let event: serde_json::Value =
                    serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(event.get("event_id").is_some(), "{name}");
                // raven sends Python logging levels as integers.
                assert_eq!(event["level"], 40, "{name}");
            } else {
                envelopes += 1;
                assert!(req.path.ends_with("/envelope/"), "{name}");
                let decoded =
                    decode_body(body, &encodings, limits.envelope_decode_limit()).unwrap();
                let env = parse_envelope(decoded).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                validate_item_counts(&env, &limits).unwrap();
                let auth = reconcile(auth, env.headers.dsn.as_deref()).unwrap();
                assert_eq!(auth.public_key, KEY, "{name}");
                assert!(!env.items.is_empty(), "{name}");
                for item in env.known_items() {
                    if item.headers.ty != ItemType::Attachment {
                        let v: serde_json::Value = serde_json::from_slice(&item.payload)
                            .unwrap_or_else(|e| panic!("{name} {}: {e}", item.headers.ty));
                        assert!(v.is_object(), "{name}");
                    }
                }
                if name.starts_with("sentry-node") {
                    // JS: query-string auth, no Content-Encoding, implicit item lengths.
                    assert!(req.query.is_some());
                    assert!(encodings.is_empty());
                    assert!(env.items.iter().any(|i| i.headers.length.is_none()));
                } else {
                    assert_eq!(auth.version, Some(7));
                    let expected = if name.contains("-br-") {
                        ContentEncoding::Brotli
                    } else {
                        ContentEncoding::Gzip
                    };
                    assert_eq!(encodings, vec![expected], "{name}");
                    assert!(env.items.iter().all(|i| i.headers.length.is_some()));
                }
            }
        }
        assert_eq!((envelopes, stores), (13, 3));
    }

    #[test]
    fn captured_raven_bodies_sniffed_without_header() {
        // A proxy that strips Content-Encoding still leaves a decodable store body.
        for (name, body, _) in CAPTURED.iter().filter(|c| c.0.starts_with("raven")) {
            let out = decode_store_body(Bytes::from_static(body), 1 << 20).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&repair_python_json(&out)).unwrap();
            assert!(v.is_object(), "{name}");
            // And as base64(zlib(json)), the pre-5.6 raven format.
            let b64 = base64::engine::general_purpose::STANDARD.encode(body);
            assert_eq!(decode_store_body(b64.into(), 1 << 20).unwrap(), out);
        }
    }

    #[test]
    fn captured_node_envelopes_have_no_trailing_newline() {
        for (name, body, _) in CAPTURED.iter().filter(|c| c.0.starts_with("sentry-node")) {
            assert_ne!(body.last(), Some(&b'\n'), "{name}");
            parse_envelope(Bytes::from_static(body)).unwrap();
        }
    }

    #[test]
    fn captured_bodies_survive_reencoding() {
        // The same payloads as every other client might send them.
        let (_, body, meta) = CAPTURED
            .iter()
            .find(|c| c.0 == "sentry-python-gzip-00")
            .unwrap();
        let encodings = content_encoding_from_headers(&request(meta).headers).unwrap();
        let plain = decode_body(Bytes::from_static(body), &encodings, 1 << 20).unwrap();
        for (enc, compressed) in [
            (
                ContentEncoding::Zstd,
                zstd::stream::encode_all(&plain[..], 3).unwrap(),
            ),
            (ContentEncoding::Deflate, zlib(&plain)),
            (ContentEncoding::Brotli, br(&plain)),
        ] {
            let out = decode_body(compressed.into(), &[enc], 1 << 20).unwrap();
            assert_eq!(out, plain);
            parse_envelope(out).unwrap();
        }
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }
    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }
    fn br(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 4, 22);
            w.write_all(data).unwrap();
        }
        out
    }

    fn seed_corpus() -> Vec<Vec<u8>> {
        let mut corpus: Vec<Vec<u8>> = Vec::new();
        for (_, body, meta) in CAPTURED {
            corpus.push(body.to_vec());
            let encodings = content_encoding_from_headers(&request(meta).headers).unwrap();
            let plain = decode_body(Bytes::from_static(body), &encodings, 1 << 20).unwrap();
            corpus.push(plain.to_vec());
        }
        let handmade: &[&[u8]] = &[
            b"{}",
            b"{}\n{\"type\":\"attachment\",\"length\":0}\n\n",
            b"{\"event_id\":\"22d00b3f-d1b1-4b5d-8d20-49d138cd8a9c\",\"dsn\":\"https://abc:@h/42\"}\n{\"type\":\"event\",\"length\":2}\n{}\n",
            b"{}\n{\"type\":\"log\",\"item_count\":1}\n{\"items\":[]}",
            b"{}\n{\"type\":\"session\"}\n{\"sid\":\"x\"}\n{\"type\":\"client_report\",\"length\":4}\nabcd",
            b"{\"a\": NaN, \"b\": [-Infinity, \"NaN\\\"\"], \"c\": Infinity}",
            b"Sentry sentry_key=abc, sentry_version=7, sentry_client=raven-python/6.10.0",
            b"sentry_key=abc&sentry_version=7.0&sentry_client=x%2F1",
            b"gzip, deflate, br, zstd, identity, UTF-8",
            b"https://e12d836b15bb49d7bbf99e64295d995b@o1.ingest.sentry.io/sentry/42",
            b"Basic YWJjOmRlZg==",
            b"12MiB",
        ];
        corpus.extend(handmade.iter().map(|s| s.to_vec()));
        let sample = corpus[1].clone();
        corpus.push(zlib(&sample));
        corpus.push(gzip(&sample));
        corpus.push(br(&sample));
        corpus.push(zstd::stream::encode_all(&sample[..], 1).unwrap());
        corpus.push(
            base64::engine::general_purpose::STANDARD
                .encode(zlib(&sample))
                .into_bytes(),
        );
        corpus
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
    }

    const TOKENS: &[&[u8]] = &[
        b"\n",
        b"\n\n",
        b"\r\n",
        b"{",
        b"}",
        b"\"",
        b"\\",
        b":",
        b",",
        b"NaN",
        b"-Infinity",
        b"{\"type\":\"event\",\"length\":4294967295}\n",
        b"{\"type\":\"attachment\",\"length\":3}\n",
        b"{\"type\":\"event\"}\n",
        b"\"length\":",
        b"\"length\":-1",
        b"\"event_id\":\"",
        b"sentry_key=",
        b"sentry_version=99999999999",
        b"\xff\xfe",
        b"\x78\x9c",
        b"\x1f\x8b\x08",
        b"\x28\xb5\x2f\xfd",
        b"@",
        b"://",
    ];

    fn mutate(rng: &mut XorShift, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
        for _ in 0..=rng.below(4) {
            let len = input.len();
            match rng.below(9) {
                0 if len > 0 => {
                    let i = rng.below(len);
                    input[i] ^= 1 << rng.below(8);
                }
                1 if len > 0 => {
                    let i = rng.below(len);
                    input[i] = rng.next() as u8;
                }
                2 => {
                    let i = rng.below(len + 1);
                    let tok = TOKENS[rng.below(TOKENS.len())];
                    input.splice(i..i, tok.iter().copied());
                }
                3 if len > 0 => {
                    let a = rng.below(len);
                    let b = (a + 1 + rng.below(64)).min(len);
                    input.drain(a..b);
                }
                4 if len > 0 => {
                    let a = rng.below(len);
                    let b = (a + 1 + rng.below(256)).min(len);
                    let chunk = input[a..b].to_vec();
                    let at = rng.below(len + 1);
                    input.splice(at..at, chunk);
                }
                5 if len > 0 => input.truncate(rng.below(len)),
                6 => {
                    let other = &corpus[rng.below(corpus.len())];
                    if !other.is_empty() {
                        let a = rng.below(other.len());
                        let b = (a + 1 + rng.below(512)).min(other.len());
                        let at = rng.below(len + 1);
                        input.splice(at..at, other[a..b].iter().copied());
                    }
                }
                7 => {
                    let i = rng.below(len + 1);
                    let n = 1 + rng.below(16);
                    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                    input.splice(i..i, bytes);
                }
                _ if len > 0 => {
                    // Numbers drive lengths; make them wrong.
                    if let Some(i) = input.iter().position(u8::is_ascii_digit) {
                        input[i] = b'0' + rng.below(10) as u8;
                    }
                }
                _ => input.push(rng.next() as u8),
            }
        }
        input.truncate(64 * 1024);
    }

    #[test]
    fn mutation_fuzz_never_panics() {
        let mut corpus = seed_corpus();
        let seeds = corpus.len();
        for c in &corpus {
            fuzz_exercise(c);
        }
        let iterations: usize = std::env::var("SNAG_FUZZ_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for i in 0..iterations {
            let mut input = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &mut input, &corpus);
            let result = std::panic::catch_unwind(|| fuzz_exercise(&input));
            if result.is_err() {
                panic!(
                    "iteration {i}: fuzz_exercise panicked on input {:?}",
                    String::from_utf8_lossy(&input)
                );
            }
            // Keep some mutants so mutations stack, with a bounded corpus.
            if i % 16 == 0 {
                if corpus.len() < seeds + 256 {
                    corpus.push(input);
                } else {
                    let slot = seeds + rng.below(256);
                    corpus[slot] = input;
                }
            }
        }
    }

    #[test]
    fn fuzz_exercise_edge_inputs() {
        for input in [
            &b""[..],
            b"\n",
            b"\0",
            b"{",
            b"\"",
            b"\\",
            b"{}\n{\"type\":\"event\",\"length\":4294967295}\n",
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
            b"\x78\x9c",
            b"\x28\xb5\x2f\xfd\x00\x00",
            b"\xce\xb2\xcf\x81",
        ] {
            fuzz_exercise(input);
        }
    }
}
