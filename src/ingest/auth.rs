//! Credential extraction: `X-Sentry-Auth`, `Authorization: Sentry …`, the `sentry_key` query
//! parameter, `Authorization: Basic`, and the envelope header `dsn` (protocol reference §2).

use base64::Engine as _;
use http::HeaderMap;
use percent_encoding::percent_decode_str;

use super::error::IngestError;

/// Newest protocol version; Relay refuses anything above it.
pub const MAX_PROTOCOL_VERSION: u32 = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthInfo {
    pub public_key: String,
    /// Deprecated by Sentry and never checked; kept only for logging/diagnostics.
    pub secret_key: Option<String>,
    pub version: Option<u32>,
    /// `sentry_client`, e.g. `raven-python/6.10.0` (drives `needs_python_json_repair`).
    pub client: Option<String>,
}

impl AuthInfo {
    fn key_only(public_key: String, secret_key: Option<String>) -> Self {
        AuthInfo {
            public_key,
            secret_key,
            version: None,
            client: None,
        }
    }
}

/// Credentials from the request itself (not the envelope body). `Ok(None)` when there are none,
/// so the caller can fall back to the envelope `dsn` header via [`reconcile`].
///
/// Deviation from Relay, on purpose: Relay answers 401 whenever two mechanisms are present
/// (`X-Sentry-Auth` and `?sentry_key=`), which breaks JS requests passed through proxies that add
/// a header (§9.8). Here several sources are accepted as long as they name the same key; only
/// conflicting keys are 401. `Authorization: Basic` is consulted only when nothing else is
/// present, because a reverse proxy's own basic auth must not turn into a conflict.
pub fn extract_auth(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<AuthInfo>, IngestError> {
    let mut found: Vec<AuthInfo> = Vec::new();

    for value in headers.get_all("x-sentry-auth") {
        let s = String::from_utf8_lossy(value.as_bytes());
        // Relay ignores values without the `Sentry ` scheme; some hand-rolled clients omit it,
        // and the pairs are unambiguous either way.
        let pairs = strip_sentry_scheme(&s).unwrap_or(&s);
        if pairs.trim().is_empty() {
            continue;
        }
        found.push(parse_auth_pairs(pairs)?);
    }

    let mut basic = None;
    for value in headers.get_all(http::header::AUTHORIZATION) {
        let s = String::from_utf8_lossy(value.as_bytes());
        if let Some(pairs) = strip_sentry_scheme(&s) {
            found.push(parse_auth_pairs(pairs)?);
        } else if basic.is_none() {
            basic = parse_basic(&s);
        }
    }

    // Relay looks at the query whenever it mentions `sentry_`; GET /store/ also carries
    // `sentry_data` there, so only a `sentry_key` makes the query a credential source.
    if let Some(q) = query.filter(|q| q.contains("sentry_"))
        && let Some(a) = parse_query(q)?
    {
        found.push(a);
    }

    if found.is_empty()
        && let Some(b) = basic
    {
        found.push(b);
    }

    let mut iter = found.into_iter();
    let Some(mut auth) = iter.next() else {
        return Ok(None);
    };
    for other in iter {
        if other.public_key != auth.public_key {
            return Err(IngestError::MultipleAuth);
        }
        auth.secret_key = auth.secret_key.or(other.secret_key);
        auth.version = auth.version.or(other.version);
        auth.client = auth.client.or(other.client);
    }
    validate(&auth)?;
    Ok(Some(auth))
}

/// Request credentials, else the envelope header `dsn` (tunnel / self-authenticating
/// envelopes, §2.3). If both exist their keys must agree, as in Relay.
///
/// An unparsable `dsn` next to valid request credentials is ignored rather than rejected: the
/// request's credentials are authoritative and the header is informational there.
pub fn reconcile(
    auth: Option<AuthInfo>,
    envelope_dsn: Option<&str>,
) -> Result<AuthInfo, IngestError> {
    match (auth, envelope_dsn) {
        (Some(auth), None) => Ok(auth),
        (Some(auth), Some(dsn)) => match parse_dsn(dsn) {
            Ok(d) if d.public_key != auth.public_key => Err(IngestError::InvalidEnvelope(
                "public key header mismatch between envelope and request".into(),
            )),
            _ => Ok(auth),
        },
        (None, Some(dsn)) => {
            let d = parse_dsn(dsn)?;
            Ok(AuthInfo::key_only(d.public_key, d.secret_key))
        }
        (None, None) => Err(IngestError::MissingAuth),
    }
}

/// Relay rejects an envelope whose `dsn` names another project than the URL.
pub fn check_dsn_project(envelope_dsn: Option<&str>, project_id: &str) -> Result<(), IngestError> {
    if let Some(d) = envelope_dsn.and_then(|s| parse_dsn(s).ok())
        && d.project_id != project_id
    {
        return Err(IngestError::InvalidEnvelope(
            "project id header mismatch between envelope and request".into(),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    pub scheme: String,
    pub public_key: String,
    pub secret_key: Option<String>,
    /// Host with port if the DSN had one (`127.0.0.1:9000`).
    pub host: String,
    /// Path before the project id, always starting and ending with `/` (`/` or `/sentry/`);
    /// SDKs post to `{path_prefix}api/{project_id}/envelope/`.
    pub path_prefix: String,
    pub project_id: String,
}

/// `{scheme}://{public_key}[:{secret}]@{host}[:{port}]{path}/{project_id}`. Accepts the
/// `key:@host` form sentry-rust and Relay print, a trailing slash, and a query string (ignored).
/// Errors are 401 "bad envelope authentication header", since the envelope `dsn` header is
/// where untrusted DSNs come from.
pub fn parse_dsn(s: &str) -> Result<Dsn, IngestError> {
    let bad = |why: &str| IngestError::InvalidEnvelopeAuth(format!("invalid DSN: {why}"));
    let s = s.trim();
    let (scheme, rest) = s.split_once("://").ok_or_else(|| bad("missing scheme"))?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
    {
        return Err(bad("invalid scheme"));
    }
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, host) = authority
        .rsplit_once('@')
        .ok_or_else(|| bad("missing public key"))?;
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    let (user, secret) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    let decode = |v: &str| percent_decode_str(v).decode_utf8_lossy().into_owned();
    let public_key = decode(user);
    if public_key.is_empty() {
        return Err(bad("missing public key"));
    }
    if !valid_key(&public_key) {
        return Err(bad("malformed public key"));
    }
    let secret_key = secret.map(decode).filter(|s| !s.is_empty());

    let path = path.trim_end_matches('/');
    let (prefix, project_id) = path
        .rsplit_once('/')
        .ok_or_else(|| bad("missing project id"))?;
    if project_id.is_empty() || !project_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("project id must be an integer"));
    }
    Ok(Dsn {
        scheme: scheme.to_ascii_lowercase(),
        public_key,
        secret_key,
        host: host.to_owned(),
        path_prefix: format!("{prefix}/"),
        project_id: project_id.to_owned(),
    })
}

/// `Sentry sentry_key=…` → `sentry_key=…`; the scheme is case-insensitive.
fn strip_sentry_scheme(value: &str) -> Option<&str> {
    let v = value.trim_start();
    let (scheme, rest) = v.split_at_checked(6)?;
    (scheme.eq_ignore_ascii_case("sentry") && rest.starts_with(|c: char| c.is_ascii_whitespace()))
        .then_some(rest)
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v)
}

fn nonempty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

/// sentry-types' grammar: split on `,`, then `=`, trim both sides; unknown keys and
/// `sentry_timestamp` (stale in sentry-rust, §9.11) are ignored.
fn parse_auth_pairs(s: &str) -> Result<AuthInfo, IngestError> {
    let mut key = None;
    let mut secret = None;
    let mut version = None;
    let mut client = None;
    for part in s.split(',') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        let v = unquote(v);
        match k.trim() {
            "sentry_key" => key = key.or(nonempty(v)),
            "sentry_secret" => secret = secret.or(nonempty(v)),
            "sentry_client" => client = client.or(nonempty(v)),
            "sentry_version" if version.is_none() && !v.is_empty() => {
                version = Some(parse_version(v)?);
            }
            _ => {}
        }
    }
    let public_key = key.ok_or_else(|| {
        IngestError::InvalidAuthHeader("missing public key in auth header".into())
    })?;
    Ok(AuthInfo {
        public_key,
        secret_key: secret,
        version,
        client,
    })
}

fn parse_query(q: &str) -> Result<Option<AuthInfo>, IngestError> {
    let mut key = None;
    let mut secret = None;
    let mut version = None;
    let mut client = None;
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        let v = v.trim();
        match k.as_ref() {
            "sentry_key" => key = key.or(nonempty(v)),
            "sentry_secret" => secret = secret.or(nonempty(v)),
            "sentry_client" => client = client.or(nonempty(v)),
            "sentry_version" => version = version.or(nonempty(v)),
            _ => {}
        }
    }
    let Some(public_key) = key else {
        return Ok(None);
    };
    let version = version.as_deref().map(parse_version).transpose()?;
    Ok(Some(AuthInfo {
        public_key,
        secret_key: secret,
        version,
        client,
    }))
}

/// `Basic base64(key:secret)`, accepted by newer Relay.
fn parse_basic(value: &str) -> Option<AuthInfo> {
    let v = value.trim_start();
    let (scheme, rest) = v.split_at_checked(5)?;
    if !scheme.eq_ignore_ascii_case("basic") || !rest.starts_with(|c: char| c.is_ascii_whitespace())
    {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':').unwrap_or((&text, ""));
    let user = user.trim();
    if user.is_empty() || !valid_key(user) {
        return None;
    }
    Some(AuthInfo::key_only(user.to_owned(), nonempty(pass)))
}

/// `"7"` and `"7.0"` are both 7 (sentry-types reads the part before the dot).
fn parse_version(v: &str) -> Result<u32, IngestError> {
    v.split('.')
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .map_err(|_| IngestError::InvalidAuthHeader("invalid value for version".into()))
}

/// Sentry keys are 32 hex chars, GlitchTip's are dashed UUIDs; anything outside that alphabet
/// or absurdly long cannot be a key and is refused before it reaches a database lookup.
fn valid_key(k: &str) -> bool {
    (1..=64).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn validate(auth: &AuthInfo) -> Result<(), IngestError> {
    if !valid_key(&auth.public_key) {
        return Err(IngestError::BadPublicKey);
    }
    if let Some(v) = auth.version
        && v > MAX_PROTOCOL_VERSION
    {
        return Err(IngestError::UnsupportedVersion(v));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "e12d836b15bb49d7bbf99e64295d995b";

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    fn auth(pairs: &[(&str, &str)], q: Option<&str>) -> Result<Option<AuthInfo>, IngestError> {
        extract_auth(&h(pairs), q)
    }

    #[test]
    fn sentry_python_header() {
        let a = auth(
            &[(
                "X-Sentry-Auth",
                "Sentry sentry_key=e12d836b15bb49d7bbf99e64295d995b, sentry_version=7, sentry_client=sentry.python/2.68.0",
            )],
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.public_key, KEY);
        assert_eq!(a.version, Some(7));
        assert_eq!(a.client.as_deref(), Some("sentry.python/2.68.0"));
        assert_eq!(a.secret_key, None);
    }

    #[test]
    fn raven_header_with_timestamp_secret_and_version_6() {
        let a = auth(
            &[(
                "x-sentry-auth",
                "Sentry sentry_timestamp=1610999999.123456, sentry_client=raven-python/6.10.0, sentry_version=6, sentry_key=e12d836b15bb49d7bbf99e64295d995b, sentry_secret=s3cr3t",
            )],
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.public_key, KEY);
        assert_eq!(a.version, Some(6));
        assert_eq!(a.secret_key.as_deref(), Some("s3cr3t"));
        assert_eq!(a.client.as_deref(), Some("raven-python/6.10.0"));
    }

    #[test]
    fn sentry_rust_header_with_stale_timestamp() {
        let a = auth(
            &[(
                "X-Sentry-Auth",
                "Sentry sentry_key=e12d836b15bb49d7bbf99e64295d995b, sentry_version=7, sentry_timestamp=1716543210.123, sentry_client=sentry.rust/0.34",
            )],
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.public_key, KEY);
        assert_eq!(a.client.as_deref(), Some("sentry.rust/0.34"));
    }

    #[test]
    fn scheme_is_case_insensitive_and_spacing_lenient() {
        for v in [
            "sentry sentry_key=abc,sentry_version=7",
            "SENTRY   sentry_key = abc ,  sentry_version = 7.0",
            "Sentry sentry_key=\"abc\", sentry_version=7",
            "sentry_key=abc, sentry_version=7",
        ] {
            let a = auth(&[("x-sentry-auth", v)], None).unwrap().unwrap();
            assert_eq!(a.public_key, "abc", "{v}");
            assert_eq!(a.version, Some(7), "{v}");
        }
    }

    #[test]
    fn authorization_sentry_header() {
        let a = auth(
            &[("authorization", "Sentry sentry_key=abc, sentry_version=7")],
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.public_key, "abc");
        // Other schemes are not Sentry credentials.
        assert_eq!(
            auth(&[("authorization", "Bearer xyz")], None).unwrap(),
            None
        );
    }

    #[test]
    fn authorization_basic_only_as_last_resort() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:whatever"));
        let basic = format!("Basic {b64}");
        let a = auth(&[("authorization", &basic)], None).unwrap().unwrap();
        assert_eq!(a.public_key, KEY);
        // A proxy's own basic auth next to real Sentry credentials is not a conflict.
        let a = auth(
            &[
                ("authorization", "Basic dXNlcjpwYXNz"),
                ("x-sentry-auth", "Sentry sentry_key=abc"),
            ],
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.public_key, "abc");
    }

    #[test]
    fn query_string_auth_like_js() {
        let q = "sentry_version=7&sentry_key=e12d836b15bb49d7bbf99e64295d995b&sentry_client=sentry.javascript.node%2F11.12.0";
        let a = auth(&[], Some(q)).unwrap().unwrap();
        assert_eq!(a.public_key, KEY);
        assert_eq!(a.version, Some(7));
        assert_eq!(a.client.as_deref(), Some("sentry.javascript.node/11.12.0"));
    }

    #[test]
    fn query_without_key_is_not_a_credential() {
        // GET /store/?sentry_data=… with the key in a header.
        let a = auth(
            &[("x-sentry-auth", "Sentry sentry_key=abc")],
            Some("sentry_data=%7B%7D&foo=1"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.public_key, "abc");
        assert_eq!(auth(&[], Some("sentry_version=7")).unwrap(), None);
        assert_eq!(auth(&[], Some("foo=bar")).unwrap(), None);
        assert_eq!(auth(&[], Some("")).unwrap(), None);
    }

    #[test]
    fn no_credentials_is_none() {
        assert_eq!(auth(&[], None).unwrap(), None);
        assert_eq!(auth(&[("x-sentry-auth", "   ")], None).unwrap(), None);
    }

    #[test]
    fn same_key_twice_is_fine_different_keys_401() {
        // A proxy adding X-Sentry-Auth to a JS request that already has ?sentry_key (§9.8).
        let a = auth(
            &[(
                "x-sentry-auth",
                "Sentry sentry_key=abc, sentry_client=proxy/1",
            )],
            Some("sentry_key=abc&sentry_version=7"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.public_key, "abc");
        assert_eq!(a.version, Some(7));
        assert_eq!(a.client.as_deref(), Some("proxy/1"));
        let e = auth(
            &[("x-sentry-auth", "Sentry sentry_key=abc")],
            Some("sentry_key=def"),
        )
        .unwrap_err();
        assert_eq!(e.status(), 401);
        assert_eq!(e.detail(), "multiple authorization payloads detected");
        let e = auth(
            &[
                ("x-sentry-auth", "Sentry sentry_key=abc"),
                ("authorization", "Sentry sentry_key=def"),
            ],
            None,
        )
        .unwrap_err();
        assert_eq!(e.status(), 401);
    }

    #[test]
    fn missing_key_is_401_with_cause() {
        let e = auth(&[("x-sentry-auth", "Sentry sentry_version=7")], None).unwrap_err();
        assert_eq!(e.status(), 401);
        assert_eq!(e.detail(), "bad x-sentry-auth header");
        assert_eq!(e.causes(), vec!["missing public key in auth header"]);
        let e = auth(
            &[("x-sentry-auth", "Sentry sentry_key=, sentry_version=7")],
            None,
        )
        .unwrap_err();
        assert_eq!(e.status(), 401);
    }

    #[test]
    fn versions() {
        let v = |s: &str| {
            auth(
                &[(
                    "x-sentry-auth",
                    &format!("Sentry sentry_key=abc, sentry_version={s}"),
                )],
                None,
            )
        };
        assert_eq!(v("7").unwrap().unwrap().version, Some(7));
        assert_eq!(v("7.0").unwrap().unwrap().version, Some(7));
        assert_eq!(v("5").unwrap().unwrap().version, Some(5));
        let e = v("8").unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(e.detail(), "unsupported protocol version (8)");
        let e = v("seven").unwrap_err();
        assert_eq!(e.status(), 401);
        assert_eq!(e.causes(), vec!["invalid value for version"]);
        let e = auth(&[], Some("sentry_key=abc&sentry_version=9")).unwrap_err();
        assert_eq!(e.status(), 400);
        // No version at all is fine (CSP reports, hand-written clients).
        assert_eq!(v("").unwrap().unwrap().version, None);
    }

    #[test]
    fn malformed_key_is_400() {
        let e = auth(&[("x-sentry-auth", "Sentry sentry_key=ab/cd")], None).unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(e.detail(), "bad sentry DSN public key");
        let long = "a".repeat(65);
        let e = auth(&[], Some(&format!("sentry_key={long}"))).unwrap_err();
        assert_eq!(e.status(), 400);
        // GlitchTip-style UUID keys are fine.
        let a = auth(&[], Some("sentry_key=6f1d2c1e-4b1a-4c53-9e0e-2f1d3c4b5a69"))
            .unwrap()
            .unwrap();
        assert_eq!(a.public_key, "6f1d2c1e-4b1a-4c53-9e0e-2f1d3c4b5a69");
    }

    #[test]
    fn non_ascii_header_does_not_panic() {
        let mut m = HeaderMap::new();
        m.insert(
            "x-sentry-auth",
            http::HeaderValue::from_bytes(b"Sentry sentry_key=\xff\xfe").unwrap(),
        );
        assert_eq!(extract_auth(&m, None).unwrap_err().status(), 400);
    }

    #[test]
    fn dsn_forms() {
        let d =
            parse_dsn("https://e12d836b15bb49d7bbf99e64295d995b@o1.ingest.sentry.io/42").unwrap();
        assert_eq!(d.public_key, KEY);
        assert_eq!(d.secret_key, None);
        assert_eq!(d.host, "o1.ingest.sentry.io");
        assert_eq!(d.path_prefix, "/");
        assert_eq!(d.project_id, "42");
        assert_eq!(d.scheme, "https");

        // sentry-rust / Relay always print the colon (§2.1).
        let d = parse_dsn("http://abc:@127.0.0.1:9000/7").unwrap();
        assert_eq!(d.public_key, "abc");
        assert_eq!(d.secret_key, None);
        assert_eq!(d.host, "127.0.0.1:9000");

        let d = parse_dsn("https://abc:def@host/sentry/deep/42/").unwrap();
        assert_eq!(d.secret_key.as_deref(), Some("def"));
        assert_eq!(d.path_prefix, "/sentry/deep/");
        assert_eq!(d.project_id, "42");

        let d = parse_dsn("sync+https://abc@host/1?timeout=3").unwrap();
        assert_eq!(d.scheme, "sync+https");
        assert_eq!(d.project_id, "1");
    }

    #[test]
    fn dsn_errors_are_401() {
        for bad in [
            "",
            "not a dsn",
            "https://host/42",
            "https://@host/42",
            "https://abc@/42",
            "https://abc@host",
            "https://abc@host/",
            "https://abc@host/notanumber",
            "://abc@host/1",
            "https://a%2Fb@host/1",
        ] {
            let e = parse_dsn(bad).unwrap_err();
            assert_eq!(e.status(), 401, "{bad}");
            assert_eq!(e.detail(), "bad envelope authentication header");
        }
    }

    #[test]
    fn reconcile_rules() {
        let req = AuthInfo {
            public_key: "abc".into(),
            secret_key: None,
            version: Some(7),
            client: Some("c/1".into()),
        };
        // Request only.
        assert_eq!(reconcile(Some(req.clone()), None).unwrap(), req);
        // DSN-only (tunnel) envelopes authenticate from the header (§9.9).
        let a = reconcile(None, Some("https://abc@o1.ingest.sentry.io/42")).unwrap();
        assert_eq!(a.public_key, "abc");
        assert_eq!(a.version, None);
        // Both, agreeing.
        assert_eq!(
            reconcile(Some(req.clone()), Some("https://abc:@h/42")).unwrap(),
            req
        );
        // Both, disagreeing: Relay's 400.
        let e = reconcile(Some(req.clone()), Some("https://def@h/42")).unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.causes(),
            vec!["public key header mismatch between envelope and request"]
        );
        // Garbage dsn next to good request credentials: request wins.
        assert_eq!(reconcile(Some(req.clone()), Some("garbage")).unwrap(), req);
        // Garbage dsn alone: 401.
        assert_eq!(reconcile(None, Some("garbage")).unwrap_err().status(), 401);
        // Nothing anywhere.
        let e = reconcile(None, None).unwrap_err();
        assert_eq!(e.status(), 401);
        assert_eq!(e.detail(), "missing authorization information");
    }

    #[test]
    fn dsn_project_check() {
        assert!(check_dsn_project(None, "42").is_ok());
        assert!(check_dsn_project(Some("https://abc@h/42"), "42").is_ok());
        assert!(check_dsn_project(Some("garbage"), "42").is_ok());
        let e = check_dsn_project(Some("https://abc@h/prefix/43"), "42").unwrap_err();
        assert_eq!(e.status(), 400);
    }
}
