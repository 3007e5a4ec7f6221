use super::level::Level;
use super::timestamp::parse_timestamp;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The typed fields the database columns and the issue machinery need,
/// derived from a canonical event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    pub event_id: uuid::Uuid,
    pub timestamp: DateTime<Utc>,
    pub received: DateTime<Utc>,
    /// `error`, `default`, `transaction`, `csp`, `hpkp`, `expectct`,
    /// `expectstaple`, `nel` or `feedback`.
    pub event_type: String,
    pub level: Level,
    pub platform: String,
    pub release: Option<String>,
    pub dist: Option<String>,
    pub environment: Option<String>,
    pub transaction: Option<String>,
    pub logger: Option<String>,
    pub server_name: Option<String>,
    pub message: Option<String>,
    pub user: Option<UserSummary>,
    /// Prefixed like Sentry's `sentry:user` tag (`id:42`, `email:a@b`,
    /// `username:ann`, `ip:10.0.0.1`) so different kinds never collide.
    pub user_key: Option<String>,
    /// The event's own tags, then the derived ones Sentry shows (`level`,
    /// `environment`, `release`, `url`, `browser`, `os`, `handled`, …) where
    /// the event does not set them itself.
    pub tags: Vec<(String, String)>,
    pub sdk_name: Option<String>,
    pub sdk_version: Option<String>,
    pub fingerprint: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserSummary {
    pub id: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub ip_address: Option<String>,
}

impl UserSummary {
    pub fn key(&self) -> Option<String> {
        if let Some(id) = &self.id {
            Some(format!("id:{id}"))
        } else if let Some(e) = &self.email {
            Some(format!("email:{e}"))
        } else if let Some(u) = &self.username {
            Some(format!("username:{u}"))
        } else {
            self.ip_address.as_ref().map(|ip| format!("ip:{ip}"))
        }
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

fn owned(v: &Value, path: &[&str]) -> Option<String> {
    str_at(v, path).map(str::to_owned)
}

/// Re-derives the summary from a stored canonical event. Tolerates events
/// stored by older versions: missing fields get the same defaults that
/// normalisation would have given them.
pub fn summarize(data: &Value) -> EventSummary {
    let event_id = str_at(data, &["event_id"])
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .unwrap_or_default();
    let received = data.get("received").and_then(parse_timestamp);
    let timestamp = data
        .get("timestamp")
        .and_then(parse_timestamp)
        .or(received)
        .unwrap_or_default();
    let received = received.unwrap_or(timestamp);
    let event_type = owned(data, &["type"]).unwrap_or_else(|| "default".into());
    let level = data
        .get("level")
        .and_then(Level::from_json)
        .unwrap_or_default();
    let message = owned(data, &["logentry", "formatted"])
        .or_else(|| owned(data, &["logentry", "message"]))
        .or_else(|| owned(data, &["message"]));

    let user = data
        .get("user")
        .filter(|u| u.is_object())
        .map(|u| UserSummary {
            id: owned(u, &["id"]),
            email: owned(u, &["email"]),
            username: owned(u, &["username"]),
            ip_address: owned(u, &["ip_address"]),
        });
    let user = user.filter(|u| *u != UserSummary::default());
    let user_key = user.as_ref().and_then(UserSummary::key);

    let fingerprint = data.get("fingerprint").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    });

    let mut s = EventSummary {
        event_id,
        timestamp,
        received,
        event_type,
        level,
        platform: owned(data, &["platform"]).unwrap_or_else(|| "other".into()),
        release: owned(data, &["release"]),
        dist: owned(data, &["dist"]),
        environment: owned(data, &["environment"]),
        transaction: owned(data, &["transaction"]),
        logger: owned(data, &["logger"]),
        server_name: owned(data, &["server_name"]),
        message,
        user,
        user_key,
        tags: Vec::new(),
        sdk_name: owned(data, &["sdk", "name"]),
        sdk_version: owned(data, &["sdk", "version"]),
        fingerprint: fingerprint.filter(|f| !f.is_empty()),
    };
    s.tags = tags(data, &s);
    s
}

fn tags(data: &Value, s: &EventSummary) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = Vec::new();
    match data.get("tags") {
        Some(Value::Array(pairs)) => {
            for p in pairs {
                if let (Some(k), Some(v)) = (
                    p.get(0).and_then(Value::as_str),
                    p.get(1).and_then(Value::as_str),
                ) {
                    tags.push((k.to_owned(), v.to_owned()));
                }
            }
        }
        // Events stored before normalisation existed may carry an object.
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if let Some(v) = v.as_str() {
                    tags.push((k.clone(), v.to_owned()));
                }
            }
        }
        _ => {}
    }

    let mut derived: Vec<(&str, Option<String>)> = vec![
        ("level", Some(s.level.as_str().to_owned())),
        ("environment", s.environment.clone()),
        ("release", s.release.clone()),
        ("dist", s.dist.clone()),
        ("server_name", s.server_name.clone()),
        ("transaction", s.transaction.clone()),
        ("logger", s.logger.clone()),
        ("url", owned(data, &["request", "url"])),
        ("user", s.user_key.clone()),
    ];
    for (ctx, tag) in [
        ("browser", "browser"),
        ("os", "os"),
        ("runtime", "runtime"),
        ("client_os", "client_os"),
    ] {
        let name = owned(data, &["contexts", ctx, "name"]);
        let version = owned(data, &["contexts", ctx, "version"]);
        if let Some(name) = name {
            let full = match version {
                Some(v) => format!("{name} {}", v.trim()),
                None => name.clone(),
            };
            derived.push((tag, Some(full)));
            derived.push((
                match tag {
                    "browser" => "browser.name",
                    "os" => "os.name",
                    "runtime" => "runtime.name",
                    _ => "client_os.name",
                },
                Some(name),
            ));
        }
    }
    derived.push(("device", owned(data, &["contexts", "device", "model"])));
    derived.push((
        "device.family",
        owned(data, &["contexts", "device", "family"]),
    ));
    if let Some(mech) = data
        .get("exception")
        .and_then(|e| e.get("values"))
        .and_then(Value::as_array)
        .and_then(|v| v.last())
        .and_then(|e| e.get("mechanism"))
    {
        if let Some(t) = mech.get("type").and_then(Value::as_str) {
            derived.push(("mechanism", Some(t.to_owned())));
        }
        if let Some(h) = mech.get("handled").and_then(Value::as_bool) {
            derived.push(("handled", Some(if h { "yes" } else { "no" }.to_owned())));
        }
    }
    for (k, v) in derived {
        let Some(mut v) = v else { continue };
        if tags.iter().any(|(tk, _)| tk == k) {
            continue;
        }
        super::values::truncate_chars(&mut v, 200);
        tags.push((k.to_owned(), v));
    }
    tags
}
