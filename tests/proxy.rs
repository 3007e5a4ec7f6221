//! Behind a reverse proxy: secure cookies follow X-Forwarded-Proto, but
//! only from SNAG_TRUSTED_PROXIES (the nginx end-to-end test is in
//! sdk-compat-tests/test_nginx.py).

mod common;

use common::*;
use sqlx::PgPool;

async fn login_cookie(pool: PgPool, trusted: &[&str], forwarded_proto: Option<&str>) -> String {
    let mut config = test_config();
    config.trusted_proxies = trusted
        .iter()
        .map(|t| snag::config::IpNet::parse(t).unwrap())
        .collect();
    let app = start_with(pool, config).await;
    let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
    let _ = app.store.create_user("p@example.com", &hash, true).await;
    let mut request = app
        .client
        .post(app.url("/login"))
        .form(&[("email", "p@example.com"), ("password", "pw-123456789")]);
    if let Some(proto) = forwarded_proto {
        request = request.header("x-forwarded-proto", proto);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    app.server.shutdown().await.unwrap();
    cookie
}

#[sqlx::test]
async fn secure_cookies_follow_forwarded_proto_from_trusted_proxies_only(pool: PgPool) {
    let secure = |c: &str| c.split(';').any(|part| part.trim() == "Secure");
    let via_proxy = login_cookie(pool.clone(), &["127.0.0.1"], Some("https")).await;
    assert!(secure(&via_proxy), "{via_proxy}");
    let plain_proxy = login_cookie(pool.clone(), &["127.0.0.1"], Some("http")).await;
    assert!(!secure(&plain_proxy), "{plain_proxy}");
    let spoofed = login_cookie(pool.clone(), &[], Some("https")).await;
    assert!(
        !secure(&spoofed),
        "a stranger's header is ignored: {spoofed}"
    );
    let other_proxy = login_cookie(pool, &["10.0.0.0/8"], Some("https")).await;
    assert!(!secure(&other_proxy), "{other_proxy}");
}
