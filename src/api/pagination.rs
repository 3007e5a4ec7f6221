//! Sentry's cursor pagination: `?cursor=<value>:<offset>:<is_prev>` in, a
//! `Link` header with `rel="previous"` and `rel="next"` entries out, each
//! saying whether it has `results`.

use super::{ApiError, ApiResult, Params};
use crate::store::IssueCursor;
use axum::http::{HeaderValue, header};
use axum::response::Response;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: i64,
    pub per_page: i64,
}

/// The largest page Sentry serves; also ours.
pub const MAX_PER_PAGE: i64 = 100;
/// Pages past this offset are refused rather than scanned.
const MAX_OFFSET: i64 = 100_000;

impl Page {
    /// Reads `cursor` and `per_page` (or `limit`) from the query string.
    pub fn from_params(params: &Params, default_per_page: i64) -> ApiResult<Self> {
        let per_page = per_page(params, default_per_page)?;
        let offset = match params.get("cursor") {
            None | Some("") => 0,
            Some(cursor) => parse_cursor(cursor)
                .ok_or_else(|| ApiError::BadRequest("Invalid cursor parameter.".into()))?,
        };
        Ok(Page { offset, per_page })
    }

    /// Rows to fetch: one more than a page, to learn whether a next exists.
    pub fn fetch(&self) -> i64 {
        self.per_page + 1
    }
}

fn per_page(params: &Params, default_per_page: i64) -> ApiResult<i64> {
    match params.get("per_page").or_else(|| params.get("limit")) {
        None | Some("") => Ok(default_per_page),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PER_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "per_page must be a number from 1 to {MAX_PER_PAGE}"
                ))
            }),
    }
}

/// Issue lists page by keyset, in Sentry's cursor shape
/// `<sort value>:<issue id>:<is_prev>`: a page continues after (or, with
/// is_prev 1, before) that issue, so deep pages cost what the first does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysetPage {
    pub cursor: Option<IssueCursor>,
    pub per_page: i64,
}

impl KeysetPage {
    pub fn from_params(params: &Params, default_per_page: i64) -> ApiResult<Self> {
        let per_page = per_page(params, default_per_page)?;
        let cursor = match params.get("cursor") {
            None | Some("") => None,
            Some(c) => Some(
                parse_keyset(c)
                    .ok_or_else(|| ApiError::BadRequest("Invalid cursor parameter.".into()))?,
            ),
        };
        Ok(Self { cursor, per_page })
    }

    /// Rows to fetch: one more than a page, to learn whether more exist.
    pub fn fetch(&self) -> i64 {
        self.per_page + 1
    }

    /// Trims the extra row of a fetched page (in display order) and returns
    /// the `Link` header value; `key` gives a row's cursor.
    pub fn finish<T>(
        &self,
        rows: &mut Vec<T>,
        key: impl Fn(&T) -> IssueCursor,
        base_url: &str,
        path: &str,
        params: &Params,
    ) -> String {
        let backwards = self.cursor.is_some_and(|c| c.before);
        let more = rows.len() as i64 > self.per_page;
        if more {
            // The extra row is the one farthest from the cursor.
            if backwards {
                rows.remove(0);
            } else {
                rows.pop();
            }
        }
        let (has_prev, has_next) = if backwards {
            (more, true)
        } else {
            (self.cursor.is_some(), more)
        };
        // An empty page keeps pointing where it was asked to start.
        let start = self.cursor.unwrap_or(IssueCursor {
            value: 0,
            id: 0,
            before: false,
        });
        let prev = rows.first().map_or(start, &key).before();
        let next = rows.last().map_or(start, &key);
        link_value(
            base_url,
            path,
            params,
            (&keyset_cursor(prev), has_prev && !rows.is_empty()),
            (
                &keyset_cursor(IssueCursor {
                    before: false,
                    ..next
                }),
                has_next && !rows.is_empty(),
            ),
        )
    }
}

fn parse_keyset(cursor: &str) -> Option<IssueCursor> {
    let mut parts = cursor.split(':');
    let (value, id, is_prev) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(IssueCursor {
        value: value.parse().ok()?,
        id: id.parse().ok().filter(|id| *id > 0)?,
        before: match is_prev {
            "0" => false,
            "1" => true,
            _ => return None,
        },
    })
}

fn keyset_cursor(c: IssueCursor) -> String {
    format!("{}:{}:{}", c.value, c.id, u8::from(c.before))
}

fn parse_cursor(cursor: &str) -> Option<i64> {
    let mut parts = cursor.split(':');
    let (value, offset, is_prev) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || value.parse::<i64>().is_err() || !matches!(is_prev, "0" | "1") {
        return None;
    }
    offset
        .parse::<i64>()
        .ok()
        .filter(|o| (0..=MAX_OFFSET).contains(o))
}

fn cursor(offset: i64, is_prev: bool) -> String {
    format!("0:{offset}:{}", u8::from(is_prev))
}

/// The `Link` header value for a page of `path` (absolute, from the base
/// URL), keeping every query parameter except the cursor.
pub fn link(base_url: &str, path: &str, params: &Params, page: Page, has_next: bool) -> String {
    let prev = cursor((page.offset - page.per_page).max(0), true);
    let next = cursor(page.offset + page.per_page, false);
    link_value(
        base_url,
        path,
        params,
        (&prev, page.offset > 0),
        (&next, has_next && page.offset + page.per_page <= MAX_OFFSET),
    )
}

/// `Link` with a previous and a next entry, each (cursor, has results).
fn link_value(
    base_url: &str,
    path: &str,
    params: &Params,
    (prev, prev_results): (&str, bool),
    (next, next_results): (&str, bool),
) -> String {
    let url_for = |c: &str| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params.0.iter().filter(|(k, _)| k != "cursor") {
            query.append_pair(k, v);
        }
        let query = query.finish();
        // The cursor is digits, '-' and colons: left unescaped, as Sentry does.
        let sep = if query.is_empty() { "" } else { "&" };
        format!(
            "{}{path}?{query}{sep}cursor={c}",
            base_url.trim_end_matches('/')
        )
    };
    format!(
        "<{}>; rel=\"previous\"; results=\"{prev_results}\"; cursor=\"{prev}\", <{}>; rel=\"next\"; results=\"{next_results}\"; cursor=\"{next}\"",
        url_for(prev),
        url_for(next),
    )
}

/// Trims the extra row fetched by [`Page::fetch`] and reports whether
/// there was one.
pub fn split_page<T>(rows: &mut Vec<T>, page: Page) -> bool {
    let has_next = rows.len() as i64 > page.per_page;
    rows.truncate(page.per_page as usize);
    has_next
}

pub fn with_link(mut response: Response, link: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(link) {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(parse_cursor("0:100:0"), Some(100));
        assert_eq!(parse_cursor("1700000000000:0:1"), Some(0));
        for bad in [
            "",
            "0:100",
            "0:-1:0",
            "a:1:0",
            "0:1:2",
            "0:1:0:0",
            "0:999999999:0",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn link_header_keeps_filters_and_says_where_results_are() {
        let params = Params::parse(Some("query=is%3Aunresolved&cursor=0:100:0"));
        let page = Page::from_params(&params, 100).unwrap();
        let link = link("http://h/", "/api/0/x/", &params, page, false);
        assert_eq!(
            link,
            "<http://h/api/0/x/?query=is%3Aunresolved&cursor=0:0:1>; rel=\"previous\"; results=\"true\"; cursor=\"0:0:1\", \
             <http://h/api/0/x/?query=is%3Aunresolved&cursor=0:200:0>; rel=\"next\"; results=\"false\"; cursor=\"0:200:0\""
        );
        assert!(Page::from_params(&Params::parse(Some("per_page=0")), 100).is_err());
        assert!(Page::from_params(&Params::parse(Some("cursor=nope")), 100).is_err());
        assert_eq!(
            Page::from_params(&Params::parse(Some("limit=5")), 100).unwrap(),
            Page {
                offset: 0,
                per_page: 5
            }
        );
    }
}
