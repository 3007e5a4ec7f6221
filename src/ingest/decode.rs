//! Request body decoding: `Content-Encoding`, raven's store-body sniffing, and Python's
//! `NaN` JSON (protocol reference §4, §9.1, §9.6, §9.7, §9.12).
//!
//! Every decoder streams into a buffer that refuses to grow past the caller's limit, so a
//! decompression bomb costs at most `limit` bytes of memory and the CPU to inflate `limit`
//! bytes before it is answered with 413.

use std::borrow::Cow;
use std::io::Read;

use base64::Engine as _;
use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};
use http::HeaderMap;

use super::budget::Reservation;
use super::error::IngestError;

/// More layers than any client produces; caps the work a stacked header can ask for.
const MAX_STACKED_ENCODINGS: usize = 4;
const CHUNK: usize = 32 * 1024;
const DECOMPRESSED_LIMIT_NAME: &str = "max decompressed body size";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentEncoding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl ContentEncoding {
    pub fn as_str(&self) -> &'static str {
        match self {
            ContentEncoding::Identity => "identity",
            ContentEncoding::Gzip => "gzip",
            ContentEncoding::Deflate => "deflate",
            ContentEncoding::Brotli => "br",
            ContentEncoding::Zstd => "zstd",
        }
    }

    /// One `Content-Encoding` token, case-insensitive. `""` (sentry-ruby 5.x) and `UTF-8`
    /// (sentry.java.android 2.0.0) are bogus values real SDKs send; Relay strips them, so they
    /// mean identity.
    pub fn parse(token: &str) -> Option<Self> {
        let t = token.trim();
        let is = |s: &str| t.eq_ignore_ascii_case(s);
        Some(
            if t.is_empty() || is("identity") || is("utf-8") || is("utf8") {
                ContentEncoding::Identity
            } else if is("gzip") || is("x-gzip") {
                ContentEncoding::Gzip
            } else if is("deflate") {
                ContentEncoding::Deflate
            } else if is("br") {
                ContentEncoding::Brotli
            } else if is("zstd") {
                ContentEncoding::Zstd
            } else {
                return None;
            },
        )
    }
}

/// Encodings in the order they were applied (header order). Identity tokens are dropped, so an
/// empty list means "no decoding". Unknown tokens are 415, as tower-http answers in Relay.
pub fn content_encoding_from_headers(
    headers: &HeaderMap,
) -> Result<Vec<ContentEncoding>, IngestError> {
    let mut out = Vec::new();
    for value in headers.get_all(http::header::CONTENT_ENCODING) {
        let s = value.to_str().map_err(|_| {
            IngestError::UnsupportedEncoding(String::from_utf8_lossy(value.as_bytes()).into_owned())
        })?;
        for token in s.split(',') {
            match ContentEncoding::parse(token) {
                Some(ContentEncoding::Identity) => {}
                Some(enc) => out.push(enc),
                None => return Err(IngestError::UnsupportedEncoding(token.trim().to_owned())),
            }
        }
    }
    if out.len() > MAX_STACKED_ENCODINGS {
        return Err(IngestError::UnsupportedEncoding(format!(
            "{} stacked encodings",
            out.len()
        )));
    }
    Ok(out)
}

/// Undo `encodings` (given in application order) and enforce `limit` on the result.
///
/// An empty body stays empty whatever the header says, so the caller can answer
/// "empty request body" rather than a decompression error.
pub fn decode_body(
    body: Bytes,
    encodings: &[ContentEncoding],
    limit: usize,
) -> Result<Bytes, IngestError> {
    decode_body_within(body, encodings, limit, None)
}

/// [`decode_body`], with every byte of decoder output also held against
/// `held` (the process-wide body budget): when the budget runs out the
/// decoder stops with `BodiesOverBudget` rather than allocating further.
pub fn decode_body_within(
    body: Bytes,
    encodings: &[ContentEncoding],
    limit: usize,
    held: Option<&Reservation>,
) -> Result<Bytes, IngestError> {
    let mut data = body;
    for enc in encodings.iter().rev() {
        if data.is_empty() {
            break;
        }
        data = match enc {
            ContentEncoding::Identity => data,
            ContentEncoding::Gzip => gunzip(&data, limit, held)?.into(),
            ContentEncoding::Deflate => inflate_zlib_or_raw(&data, limit, held)?.into(),
            ContentEncoding::Brotli => unbrotli(&data, limit, held)?.into(),
            ContentEncoding::Zstd => unzstd(&data, limit, held)?.into(),
        };
    }
    if data.len() > limit {
        return Err(too_large(limit));
    }
    Ok(data)
}

/// Relay's `/store/` sniffing (`decode_bytes`), for bodies that arrive without a
/// `Content-Encoding` (old raven: base64(zlib(json))) — and harmless after `decode_body`, since
/// JSON passes through untouched:
/// 1. JSON (`{` after optional whitespace/BOM) → as is;
/// 2. a valid zlib stream → inflated (raw zlib without a header, as some raven forks send);
/// 3. standard base64 → decoded; if that is JSON → as is, else inflated (zlib, then raw).
pub fn decode_store_body(body: Bytes, limit: usize) -> Result<Bytes, IngestError> {
    decode_store_body_within(body, limit, None)
}

/// [`decode_store_body`] holding its output against `held`, as
/// [`decode_body_within`] does.
pub fn decode_store_body_within(
    body: Bytes,
    limit: usize,
    held: Option<&Reservation>,
) -> Result<Bytes, IngestError> {
    if body.is_empty() || starts_like_json(&body) {
        if body.len() > limit {
            return Err(too_large(limit));
        }
        return Ok(body);
    }
    if looks_like_zlib(&body) {
        match inflate(&body, true, limit, held) {
            Ok(v) => return Ok(v.into()),
            Err(e @ (IngestError::PayloadTooLarge { .. } | IngestError::BodiesOverBudget)) => {
                return Err(e);
            }
            // `x` is both the usual zlib header byte and a base64 digit: try base64 next.
            Err(_) => {}
        }
    }
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| IngestError::InvalidBody(format!("body is not JSON, zlib or base64: {e}")))?;
    drop(compact);
    if starts_like_json(&decoded) {
        if decoded.len() > limit {
            return Err(too_large(limit));
        }
        return Ok(decoded.into());
    }
    if decoded.is_empty() {
        return Ok(Bytes::new());
    }
    inflate_zlib_or_raw(&decoded, limit, held).map(Bytes::from)
}

/// Relay applies its `NaN` repair only to these clients; sentry-python 2.x (`sentry.python/`)
/// serialises with `allow_nan=False`.
pub fn needs_python_json_repair(client: Option<&str>) -> bool {
    client.is_some_and(|c| {
        let c = c.trim_start().as_bytes();
        ["raven-python/", "sentry-python/"]
            .iter()
            .any(|p| c.len() >= p.len() && c[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
    })
}

/// Replace Python's `NaN`, `Infinity` and `-Infinity` tokens outside JSON strings with `null`.
/// Borrows when there is nothing to replace.
pub fn repair_python_json(body: &[u8]) -> Cow<'_, [u8]> {
    const TOKENS: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];
    let mut out: Option<Vec<u8>> = None;
    let mut copied_to = 0;
    let mut in_string = false;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b == b'I' || b == b'N' {
            let rest = &body[i..];
            if let Some(tok) = TOKENS.iter().find(|t| rest.starts_with(t)) {
                let o = out.get_or_insert_with(|| Vec::with_capacity(body.len()));
                o.extend_from_slice(&body[copied_to..i]);
                o.extend_from_slice(b"null");
                i += tok.len();
                copied_to = i;
                continue;
            }
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(body),
        Some(mut o) => {
            o.extend_from_slice(&body[copied_to..]);
            Cow::Owned(o)
        }
    }
}

fn too_large(limit: usize) -> IngestError {
    IngestError::PayloadTooLarge {
        limit_name: DECOMPRESSED_LIMIT_NAME,
        limit,
    }
}

fn corrupt(encoding: &'static str, reason: impl ToString) -> IngestError {
    IngestError::InvalidCompression {
        encoding,
        reason: reason.to_string(),
    }
}

fn starts_like_json(data: &[u8]) -> bool {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// RFC 1950 header check: deflate method, window ≤ 32 KiB, header checksum.
fn looks_like_zlib(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => {
            cmf & 0x0F == 8 && cmf >> 4 <= 7 && ((u16::from(*cmf) << 8) | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// Output buffer that never grows past `limit`: growth is geometric like `Vec`, but the last
/// step is clamped, so a refused bomb has allocated at most `limit` bytes.
struct Bounded<'a> {
    out: Vec<u8>,
    limit: usize,
    /// Capacity is held here before it is allocated.
    held: Option<&'a Reservation>,
}

impl<'a> Bounded<'a> {
    fn new(limit: usize, input_len: usize, held: Option<&'a Reservation>) -> Self {
        let hint = input_len.saturating_mul(4).clamp(CHUNK, 4 * 1024 * 1024);
        let mut sink = Bounded {
            out: Vec::new(),
            limit,
            held,
        };
        let initial = hint.min(limit);
        if sink.hold(initial) {
            sink.out.reserve_exact(initial);
        }
        sink
    }

    fn hold(&self, bytes: usize) -> bool {
        self.held.is_none_or(|h| h.grow(bytes))
    }

    fn push(&mut self, chunk: &[u8]) -> Result<(), IngestError> {
        let new_len = self.out.len() + chunk.len();
        if new_len > self.limit {
            return Err(too_large(self.limit));
        }
        if new_len > self.out.capacity() {
            let target = self
                .out
                .capacity()
                .saturating_mul(2)
                .max(new_len)
                .min(self.limit);
            if !self.hold(target - self.out.capacity()) {
                return Err(IngestError::BodiesOverBudget);
            }
            self.out.reserve_exact(target - self.out.len());
        }
        self.out.extend_from_slice(chunk);
        Ok(())
    }
}

fn read_bounded(
    mut reader: impl Read,
    limit: usize,
    input_len: usize,
    encoding: &'static str,
    held: Option<&Reservation>,
) -> Result<Vec<u8>, IngestError> {
    let mut sink = Bounded::new(limit, input_len, held);
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(sink.out),
            Ok(n) => sink.push(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(corrupt(encoding, e)),
        }
    }
}

fn gunzip(data: &[u8], limit: usize, held: Option<&Reservation>) -> Result<Vec<u8>, IngestError> {
    // Multi-member: `cat a.gz b.gz` is valid gzip and some proxies produce it.
    read_bounded(
        flate2::read::MultiGzDecoder::new(data),
        limit,
        data.len(),
        "gzip",
        held,
    )
}

fn unbrotli(data: &[u8], limit: usize, held: Option<&Reservation>) -> Result<Vec<u8>, IngestError> {
    read_bounded(
        brotli::Decompressor::new(data, CHUNK),
        limit,
        data.len(),
        "br",
        held,
    )
}

fn unzstd(data: &[u8], limit: usize, held: Option<&Reservation>) -> Result<Vec<u8>, IngestError> {
    let mut dec = zstd::stream::read::Decoder::with_buffer(data).map_err(|e| corrupt("zstd", e))?;
    // The decoder allocates the window the frame asks for (up to 128 MiB by default). A window
    // larger than the output limit is never needed to produce `limit` bytes... except that
    // encoders pick it from the level, not the size, so keep 8 MiB (level 19) as the floor.
    let wanted = usize::BITS - limit.max(1).leading_zeros();
    dec.window_log_max(wanted.clamp(23, 27))
        .map_err(|e| corrupt("zstd", e))?;
    read_bounded(dec, limit, data.len(), "zstd", held)
}

/// HTTP `deflate` is zlib-wrapped (raven sends `zlib.compress()` output), but some clients send
/// raw deflate; try zlib first when the header is plausible, then raw.
fn inflate_zlib_or_raw(
    data: &[u8],
    limit: usize,
    held: Option<&Reservation>,
) -> Result<Vec<u8>, IngestError> {
    if looks_like_zlib(data) {
        match inflate(data, true, limit, held) {
            Ok(v) => return Ok(v),
            Err(e @ (IngestError::PayloadTooLarge { .. } | IngestError::BodiesOverBudget)) => {
                return Err(e);
            }
            Err(_) => {}
        }
    }
    inflate(data, false, limit, held)
}

/// Drives `Decompress` directly rather than through `flate2::read`, whose readers report a
/// truncated zlib/raw stream as a clean EOF.
fn inflate(
    data: &[u8],
    zlib: bool,
    limit: usize,
    held: Option<&Reservation>,
) -> Result<Vec<u8>, IngestError> {
    let mut d = Decompress::new(zlib);
    let mut sink = Bounded::new(limit, data.len(), held);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let (in0, out0) = (d.total_in(), d.total_out());
        let pos = usize::try_from(in0).unwrap_or(data.len()).min(data.len());
        let status = d
            .decompress(&data[pos..], &mut buf, FlushDecompress::None)
            .map_err(|e| corrupt("deflate", e))?;
        let produced = (d.total_out() - out0) as usize;
        sink.push(&buf[..produced])?;
        match status {
            Status::StreamEnd => return Ok(sink.out),
            Status::Ok | Status::BufError => {
                if produced == 0 && d.total_in() == in0 {
                    return Err(corrupt("deflate", "truncated stream"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }
    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }
    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
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
    fn zst(data: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(data, 3).unwrap()
    }
    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(http::header::CONTENT_ENCODING, v.parse().unwrap());
        }
        h
    }
    fn enc(values: &[&str]) -> Result<Vec<ContentEncoding>, IngestError> {
        content_encoding_from_headers(&headers(values))
    }

    const JSON: &[u8] = br#"{"message":"hello","level":"error"}"#;

    #[test]
    fn header_parsing() {
        use ContentEncoding::*;
        assert_eq!(enc(&[]).unwrap(), vec![]);
        assert_eq!(enc(&["gzip"]).unwrap(), vec![Gzip]);
        assert_eq!(enc(&["GZIP"]).unwrap(), vec![Gzip]);
        assert_eq!(enc(&["x-gzip"]).unwrap(), vec![Gzip]);
        assert_eq!(enc(&["Deflate"]).unwrap(), vec![Deflate]);
        assert_eq!(enc(&["br"]).unwrap(), vec![Brotli]);
        assert_eq!(enc(&["BR"]).unwrap(), vec![Brotli]);
        assert_eq!(enc(&["zstd"]).unwrap(), vec![Zstd]);
        assert_eq!(enc(&["gzip, br"]).unwrap(), vec![Gzip, Brotli]);
        assert_eq!(enc(&["gzip", "br"]).unwrap(), vec![Gzip, Brotli]);
        assert_eq!(enc(&["identity, gzip"]).unwrap(), vec![Gzip]);
    }

    #[test]
    fn bogus_sdk_encodings_are_identity() {
        // sentry-ruby 5.x sends "", sentry.java.android 2.0.0 sends "UTF-8" (§9.6).
        for v in ["", "UTF-8", "utf-8", "identity", "Identity", " "] {
            assert_eq!(enc(&[v]).unwrap(), vec![], "{v:?}");
        }
    }

    #[test]
    fn unknown_encoding_is_415() {
        for v in ["compress", "lzma", "gzip, xz", "bzip2"] {
            let e = enc(&[v]).unwrap_err();
            assert_eq!(e.status(), 415, "{v}");
        }
        let e = enc(&["gzip, gzip, gzip, gzip, gzip"]).unwrap_err();
        assert_eq!(e.status(), 415);
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_bytes(b"gz\xffip").unwrap(),
        );
        assert_eq!(content_encoding_from_headers(&h).unwrap_err().status(), 415);
    }

    #[test]
    fn round_trips() {
        use ContentEncoding::*;
        let cases: Vec<(Vec<u8>, Vec<ContentEncoding>)> = vec![
            (JSON.to_vec(), vec![]),
            (JSON.to_vec(), vec![Identity]),
            (gzip(JSON), vec![Gzip]),
            (zlib(JSON), vec![Deflate]),
            (raw_deflate(JSON), vec![Deflate]),
            (br(JSON), vec![Brotli]),
            (zst(JSON), vec![Zstd]),
            (br(&gzip(JSON)), vec![Gzip, Brotli]),
            (gzip(&zst(JSON)), vec![Zstd, Gzip]),
        ];
        for (body, encs) in cases {
            let out = decode_body(Bytes::from(body), &encs, 1024).unwrap();
            assert_eq!(&out[..], JSON, "{encs:?}");
        }
    }

    #[test]
    fn deflate_means_zlib_with_raw_fallback() {
        // raven: zlib.compress() output, starts with 0x78 (§9.7).
        let z = zlib(JSON);
        assert_eq!(z[0], 0x78);
        let d = decode_body(z.into(), &[ContentEncoding::Deflate], 1 << 20).unwrap();
        assert_eq!(&d[..], JSON);
        // Bugsink-style raw deflate, no zlib header.
        let r = raw_deflate(JSON);
        let d = decode_body(r.into(), &[ContentEncoding::Deflate], 1 << 20).unwrap();
        assert_eq!(&d[..], JSON);
    }

    #[test]
    fn multi_member_gzip() {
        let mut body = gzip(b"{\"a\":");
        body.extend(gzip(b"1}"));
        let d = decode_body(body.into(), &[ContentEncoding::Gzip], 100).unwrap();
        assert_eq!(&d[..], b"{\"a\":1}");
    }

    #[test]
    fn corrupt_and_truncated_bodies_are_400() {
        use ContentEncoding::*;
        let big: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for (body, e) in [
            (gzip(&big), Gzip),
            (zlib(&big), Deflate),
            (raw_deflate(&big), Deflate),
            (br(&big), Brotli),
            (zst(&big), Zstd),
        ] {
            let truncated = Bytes::copy_from_slice(&body[..body.len() / 2]);
            let err = decode_body(truncated, &[e], 1 << 20).unwrap_err();
            assert_eq!(err.status(), 400, "{e:?}: {err:?}");
            let garbage = Bytes::from_static(b"this is definitely not compressed data!!");
            let err = decode_body(garbage, &[e], 1 << 20).unwrap_err();
            assert_eq!(err.status(), 400, "{e:?}: {err:?}");
            assert_eq!(err.detail(), "failed to decode request body");
        }
    }

    #[test]
    fn empty_body_stays_empty() {
        for e in [
            ContentEncoding::Gzip,
            ContentEncoding::Deflate,
            ContentEncoding::Brotli,
            ContentEncoding::Zstd,
        ] {
            assert!(decode_body(Bytes::new(), &[e], 10).unwrap().is_empty());
        }
    }

    #[test]
    fn identity_over_limit_is_413() {
        let e = decode_body(Bytes::from_static(b"0123456789"), &[], 9).unwrap_err();
        assert_eq!(e.status(), 413);
        assert!(decode_body(Bytes::from_static(b"0123456789"), &[], 10).is_ok());
    }

    #[test]
    fn exact_limit_is_accepted_one_over_is_refused() {
        let data = vec![b'a'; 5000];
        for (body, e) in [
            (gzip(&data), ContentEncoding::Gzip),
            (zlib(&data), ContentEncoding::Deflate),
            (raw_deflate(&data), ContentEncoding::Deflate),
            (br(&data), ContentEncoding::Brotli),
            (zst(&data), ContentEncoding::Zstd),
        ] {
            let b = Bytes::from(body);
            assert_eq!(decode_body(b.clone(), &[e], 5000).unwrap().len(), 5000);
            assert_eq!(
                decode_body(b, &[e], 4999).unwrap_err().status(),
                413,
                "{e:?}"
            );
        }
    }

    /// A stream of zeros that inflates far past the limit must be refused after at most
    /// `limit` bytes of output, quickly.
    fn assert_bomb_refused(body: Vec<u8>, e: ContentEncoding) {
        let limit = 1 << 20;
        let started = std::time::Instant::now();
        let err = decode_body(body.into(), &[e], limit).unwrap_err();
        assert_eq!(err.status(), 413, "{e:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{e:?} took {:?}",
            started.elapsed()
        );
    }

    fn zeros_stream(mut w: impl Write, total: usize) {
        let block = vec![0u8; 1 << 16];
        let mut left = total;
        while left > 0 {
            let n = left.min(block.len());
            w.write_all(&block[..n]).unwrap();
            left -= n;
        }
    }

    #[test]
    fn gzip_bomb_refused_with_bounded_memory() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
        zeros_stream(&mut enc, 64 << 20);
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        assert_bomb_refused(bomb, ContentEncoding::Gzip);
    }

    /// The issue's scenario: ~10 MB on the wire that inflates to ~10 GB. Multi-member gzip lets
    /// the test build it without compressing 10 GB first.
    #[test]
    fn ten_megabyte_gzip_bomb_of_ten_gigabytes() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
        zeros_stream(&mut enc, 1 << 20);
        let member = enc.finish().unwrap();
        let copies = (10 << 20) / member.len();
        let bomb = member.repeat(copies);
        assert!(
            copies as u64 * (1 << 20) >= 9 << 30,
            "inflates to only {copies} MiB"
        );
        assert_bomb_refused(bomb, ContentEncoding::Gzip);
    }

    #[test]
    fn other_bombs_refused() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(9));
        zeros_stream(&mut z, 16 << 20);
        assert_bomb_refused(z.finish().unwrap(), ContentEncoding::Deflate);

        let mut b = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut b, 4096, 1, 22);
            zeros_stream(&mut w, 16 << 20);
        }
        assert_bomb_refused(b, ContentEncoding::Brotli);

        let mut z = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        zeros_stream(&mut z, 16 << 20);
        assert_bomb_refused(z.finish().unwrap(), ContentEncoding::Zstd);

        // Nested: a bomb inside gzip inside br. The inner layer is bounded too.
        let mut inner = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
        zeros_stream(&mut inner, 16 << 20);
        let inner = inner.finish().unwrap();
        let limit = 1 << 20;
        let err = decode_body(
            br(&inner).into(),
            &[ContentEncoding::Gzip, ContentEncoding::Brotli],
            limit,
        )
        .unwrap_err();
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn bounded_buffer_never_exceeds_limit() {
        let mut b = Bounded::new(100_000, 10, None);
        for _ in 0..99 {
            b.push(&[0u8; 1000]).unwrap();
        }
        assert!(b.out.capacity() <= 100_000);
        b.push(&[0u8; 1000]).unwrap();
        assert!(b.out.capacity() <= 100_000);
        assert_eq!(b.push(&[0]).unwrap_err().status(), 413);
    }

    #[test]
    fn store_sniffing() {
        let limit = 1 << 20;
        // Plain JSON, with or without leading whitespace / BOM.
        for body in [
            JSON.to_vec(),
            [b"  \n".as_slice(), JSON].concat(),
            [b"\xEF\xBB\xBF".as_slice(), JSON].concat(),
        ] {
            let out = decode_store_body(body.clone().into(), limit).unwrap();
            assert_eq!(&out[..], &body[..]);
        }
        // zlib without a header (raven sends Content-Encoding: deflate, but forks may not).
        let out = decode_store_body(zlib(JSON).into(), limit).unwrap();
        assert_eq!(&out[..], JSON);
        // base64(json)
        let b64 = base64::engine::general_purpose::STANDARD.encode(JSON);
        let out = decode_store_body(b64.into(), limit).unwrap();
        assert_eq!(&out[..], JSON);
        // base64(zlib(json)) — raven < 5.6 (§4.2).
        let b64z = base64::engine::general_purpose::STANDARD.encode(zlib(JSON));
        let out = decode_store_body(b64z.clone().into(), limit).unwrap();
        assert_eq!(&out[..], JSON);
        // …with line wrapping.
        let wrapped: String = b64z
            .as_bytes()
            .chunks(10)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        let out = decode_store_body(wrapped.into(), limit).unwrap();
        assert_eq!(&out[..], JSON);
        // base64(raw deflate)
        let b64r = base64::engine::general_purpose::STANDARD.encode(raw_deflate(JSON));
        let out = decode_store_body(b64r.into(), limit).unwrap();
        assert_eq!(&out[..], JSON);
        // Empty stays empty.
        assert!(decode_store_body(Bytes::new(), limit).unwrap().is_empty());
    }

    #[test]
    fn store_sniffing_errors() {
        let e = decode_store_body(Bytes::from_static(b"not json, not base64!"), 1000).unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(e.detail(), "invalid request body");
        // Valid base64 of garbage: a decompression error, still 400.
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"\x01\x02garbage");
        assert_eq!(
            decode_store_body(b64.into(), 1000).unwrap_err().status(),
            400
        );
        // JSON over the limit.
        let e = decode_store_body(Bytes::from_static(b"{\"a\":12345}"), 5).unwrap_err();
        assert_eq!(e.status(), 413);
        // base64+zlib bomb.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(9));
        zeros_stream(&mut z, 8 << 20);
        let b64 = base64::engine::general_purpose::STANDARD.encode(z.finish().unwrap());
        assert_eq!(
            decode_store_body(b64.into(), 1 << 20).unwrap_err().status(),
            413
        );
    }

    #[test]
    fn python_client_detection() {
        assert!(needs_python_json_repair(Some("raven-python/6.10.0")));
        assert!(needs_python_json_repair(Some("sentry-python/0.9")));
        assert!(needs_python_json_repair(Some("Raven-Python/5.0")));
        assert!(!needs_python_json_repair(Some("sentry.python/2.75.0")));
        assert!(!needs_python_json_repair(Some(
            "sentry.javascript.node/9.0"
        )));
        assert!(!needs_python_json_repair(Some("raven")));
        assert!(!needs_python_json_repair(None));
    }

    #[test]
    fn nan_repair() {
        let input = br#"{"a": NaN, "b": Infinity, "c": -Infinity, "d": [NaN,-Infinity], "e": 1.5}"#;
        let out = repair_python_json(input);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"a": null, "b": null, "c": null, "d": [null,null], "e": 1.5}"#
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v["a"].is_null() && v["c"].is_null());
        assert_eq!(v["e"], 1.5);
    }

    #[test]
    fn nan_repair_leaves_strings_alone() {
        let input = br#"{"NaN": "NaN Infinity -Infinity", "esc": "q\"NaN\\", "k": NaN}"#;
        let out = repair_python_json(input);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"NaN": "NaN Infinity -Infinity", "esc": "q\"NaN\\", "k": null}"#
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["NaN"], "NaN Infinity -Infinity");
        assert_eq!(v["esc"], "q\"NaN\\");
    }

    #[test]
    fn nan_repair_borrows_when_clean() {
        let input = br#"{"a": -1, "b": "Infinity"}"#;
        assert!(matches!(repair_python_json(input), Cow::Borrowed(_)));
        assert!(matches!(repair_python_json(b""), Cow::Borrowed(_)));
        // Unterminated string / invalid UTF-8 must not panic.
        let _ = repair_python_json(b"\"abc\\");
        let _ = repair_python_json(b"\xff\xfeNaN");
    }
}
