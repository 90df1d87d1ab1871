//! RabbitMQ's list parameters on every list endpoint: `sort`,
//! `sort_reverse`, `columns`, and with `page` the paged shape
//! (`page_size`, `name`, `use_regex`) with its counts. Applied to a
//! handler's JSON list after the fact, so every list gets them alike.

use super::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// RabbitMQ's largest page.
const MAX_PAGE_SIZE: u64 = 500;
const DEFAULT_PAGE_SIZE: u64 = 100;
/// A list body larger than this is passed on untouched.
const MAX_LIST_BYTES: usize = 512 * 1024 * 1024;

const KEYS: [&str; 7] = [
    "sort",
    "sort_reverse",
    "columns",
    "page",
    "page_size",
    "name",
    "use_regex",
];

/// Set by a handler that paged its list itself (see [`fast_page`]): the
/// middleware leaves its answer alone.
const PAGED: &str = "x-ferretmq-paged";

/// A page a handler cuts itself. In name order (no `sort`, or
/// `sort=name`) it is cut before anything is rendered, so a page of 100,000
/// queues costs a sort of their names; in another order every entry is
/// rendered once and sorted, without the middleware's round trip through
/// serialized JSON.
pub(super) struct ListPage {
    page: u64,
    size: u64,
    /// `sort=name`: by name alone, across vhosts (else vhost, then name).
    by_name: bool,
    /// Any other `sort`, as a dotted path into the rendered entry.
    other: Option<Vec<String>>,
    reverse: bool,
    name: Option<(String, bool)>,
    columns: Option<String>,
}

impl ListPage {
    pub(super) fn from_query(query: Option<&str>) -> Result<Option<ListPage>, ApiError> {
        let q: HashMap<String, String> = query.map(|q| url_pairs(q).collect()).unwrap_or_default();
        let Some((page, size)) = paging(&q)? else {
            return Ok(None);
        };
        let sort = q.get("sort").filter(|s| !s.is_empty());
        Ok(Some(ListPage {
            page,
            size,
            by_name: sort.is_some_and(|s| s == "name"),
            other: sort
                .filter(|s| *s != "name")
                .map(|s| s.split('.').map(str::to_string).collect()),
            reverse: q.get("sort_reverse").is_some_and(|r| r == "true"),
            name: q
                .get("name")
                .filter(|n| !n.is_empty())
                .map(|n| (n.clone(), q.get("use_regex").is_some_and(|r| r == "true"))),
            columns: q.get("columns").cloned(),
        }))
    }

    /// Filter `all` (in vhost and name order) by name, sort it as asked,
    /// cut the page, and render what is shown.
    pub(super) fn respond<T>(
        &self,
        mut all: Vec<T>,
        name_of: impl Fn(&T) -> &str,
        key_of: impl Fn(&T, &str) -> Option<Value>,
        render: impl Fn(&T) -> Value,
    ) -> Result<Response, ApiError> {
        let total = all.len();
        if let Some((name, regex)) = &self.name {
            let keep = name_filter(name, *regex)?;
            all.retain(|t| keep(name_of(t)));
        }
        if let Some(path) = &self.other {
            // A key the handler reads cheaply (a depth, a count) sorts
            // without rendering; any other is read from the rendering.
            let key = path.join(".");
            if let Some(keys) = all
                .iter()
                .map(|t| key_of(t, &key))
                .collect::<Option<Vec<Value>>>()
            {
                let mut keyed: Vec<(Value, T)> = keys.into_iter().zip(all).collect();
                keyed.sort_by(|a, b| compare(Some(&a.0), Some(&b.0)));
                return self.cut(keyed, total, |(_, t)| render(t));
            }
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let mut rendered: Vec<Value> = all.iter().map(&render).collect();
            rendered.sort_by(|a, b| compare(lookup(a, &path), lookup(b, &path)));
            return self.cut(rendered, total, |v| v.clone());
        }
        if self.by_name {
            all.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        }
        self.cut(all, total, render)
    }

    /// Reverse if asked, and answer the page of `all` in RabbitMQ's shape.
    fn cut<T>(
        &self,
        mut all: Vec<T>,
        total: usize,
        render: impl Fn(&T) -> Value,
    ) -> Result<Response, ApiError> {
        if self.reverse {
            all.reverse();
        }
        let cols = self.columns.as_deref().map(columns);
        let body = page_of(all, total, self.page, self.size, cols.as_deref(), render)?;
        let mut r = axum::Json(body).into_response();
        r.headers_mut()
            .insert(PAGED, axum::http::HeaderValue::from_static("1"));
        Ok(r)
    }
}

pub(super) async fn lists(req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            url_pairs(q)
                .filter(|(k, _)| KEYS.contains(&k.as_str()))
                .collect()
        })
        .unwrap_or_default();
    if query.is_empty() {
        return next.run(req).await;
    }
    let mut resp = next.run(req).await;
    if resp.headers_mut().remove(PAGED).is_some() || resp.status() != StatusCode::OK {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_LIST_BYTES).await else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "list too large",
        )
        .into_response();
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    match shape(value, &query) {
        Ok(v) => {
            let mut r = axum::Json(v).into_response();
            if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
                r.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
            }
            r
        }
        Err(e) => e.into_response(),
    }
}

fn url_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

fn shape(value: Value, q: &HashMap<String, String>) -> Result<Value, ApiError> {
    let Value::Array(mut items) = value else {
        return Ok(match q.get("columns") {
            Some(c) => project(&value, &columns(c)),
            None => value,
        });
    };
    let total = items.len();
    let page = paging(q)?;
    if let Some((_, _)) = page
        && let Some(name) = q.get("name").filter(|n| !n.is_empty())
    {
        let regex = q.get("use_regex").is_some_and(|r| r == "true");
        let keep = name_filter(name, regex)?;
        items.retain(|i| i.get("name").and_then(Value::as_str).is_some_and(&keep));
    }
    if let Some(key) = q.get("sort").filter(|k| !k.is_empty()) {
        let path: Vec<&str> = key.split('.').collect();
        items.sort_by(|a, b| compare(lookup(a, &path), lookup(b, &path)));
    }
    if q.get("sort_reverse").is_some_and(|r| r == "true") {
        items.reverse();
    }
    if let Some((page, size)) = page {
        let cols = q.get("columns").map(|c| columns(c));
        return page_of(items, total, page, size, cols.as_deref(), Value::clone);
    }
    if let Some(c) = q.get("columns") {
        let cols = columns(c);
        items = items.iter().map(|i| project(i, &cols)).collect();
    }
    Ok(Value::Array(items))
}

/// Page `page` of `all` (filtered and sorted already) in RabbitMQ's
/// shape, rendering only the entries shown.
fn page_of<T>(
    all: Vec<T>,
    total: usize,
    page: u64,
    size: u64,
    cols: Option<&[Vec<String>]>,
    render: impl Fn(&T) -> Value,
) -> Result<Value, ApiError> {
    let filtered = all.len();
    let page_count = (filtered as u64).div_ceil(size).max(1);
    if page > page_count {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "page_out_of_range",
            format!("Page out of range, page: {page} page size: {size}, len: {filtered}"),
        ));
    }
    let start = ((page - 1) * size) as usize;
    let items: Vec<Value> = all
        .iter()
        .skip(start)
        .take(size as usize)
        .map(|t| {
            let v = render(t);
            match cols {
                Some(c) => project(&v, c),
                None => v,
            }
        })
        .collect();
    Ok(json!({
        "filtered_count": filtered,
        "item_count": items.len(),
        "items": items,
        "page": page,
        "page_count": page_count,
        "page_size": size,
        "total_count": total,
    }))
}

/// `page` and `page_size` when paging, with RabbitMQ's refusals.
fn paging(q: &HashMap<String, String>) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(page) = q.get("page") else {
        return Ok(None);
    };
    let parse = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| ApiError::bad_request("Pagination parameters are invalid"))
    };
    let page = parse(page)?;
    let size = q.get("page_size").map(|s| parse(s)).transpose()?;
    let valid = page >= 1 && size.is_none_or(|s| s >= 1 && s as u64 <= MAX_PAGE_SIZE);
    if !valid {
        let shown = size.map_or("undefined".to_string(), |s| s.to_string());
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_pagination_parameters",
            format!("Invalid pagination parameters: page number {page}, page size {shown}"),
        ));
    }
    Ok(Some((
        page as u64,
        size.map_or(DEFAULT_PAGE_SIZE, |s| s as u64),
    )))
}

/// The `name` filter: a case-insensitive substring, or a case-insensitive
/// regex with `use_regex=true`.
fn name_filter(name: &str, regex: bool) -> Result<impl Fn(&str) -> bool, ApiError> {
    let pattern = if regex {
        name.to_string()
    } else {
        regex::escape(name)
    };
    let re = regex::RegexBuilder::new(&pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|_| ApiError::bad_request(format!("invalid regex: {name}")))?;
    Ok(move |s: &str| re.is_match(s))
}

fn columns(c: &str) -> Vec<Vec<String>> {
    c.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.split('.').map(str::to_string).collect())
        .collect()
}

fn lookup<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

/// Numbers by value, strings by text, missing values first.
fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

/// Only the listed columns (dotted paths keep their nesting).
fn project(item: &Value, cols: &[Vec<String>]) -> Value {
    let mut out = Map::new();
    for path in cols {
        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
        if let Some(v) = lookup(item, &keys) {
            insert(&mut out, &keys, v.clone());
        }
    }
    Value::Object(out)
}

fn insert(m: &mut Map<String, Value>, path: &[&str], v: Value) {
    match path {
        [] => {}
        [last] => {
            m.insert((*last).to_string(), v);
        }
        [first, rest @ ..] => {
            let e = m
                .entry((*first).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = e {
                insert(inner, rest, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn names(n: usize) -> Value {
        Value::Array(
            (0..n)
                .map(|i| json!({ "name": format!("q{i}"), "messages": n - i, "message_stats": {"publish": i} }))
                .collect(),
        )
    }

    #[test]
    fn pages_have_rabbitmqs_counts() {
        let v = shape(
            names(6),
            &q(&[("page", "2"), ("page_size", "4"), ("columns", "name")]),
        )
        .expect("page");
        assert_eq!(
            v,
            json!({"filtered_count":6,"item_count":2,"items":[{"name":"q4"},{"name":"q5"}],
                   "page":2,"page_count":2,"page_size":4,"total_count":6})
        );
    }

    #[test]
    fn bad_pages_are_refused_with_rabbitmqs_texts() {
        let err = |pairs: &[(&str, &str)]| match shape(names(6), &q(pairs)) {
            Err(e) => (e.status.as_u16(), e.error, e.reason),
            Ok(v) => panic!("accepted: {v}"),
        };
        assert_eq!(
            err(&[("page", "1"), ("page_size", "600")]),
            (
                400,
                "invalid_pagination_parameters",
                json!("Invalid pagination parameters: page number 1, page size 600")
            )
        );
        assert_eq!(
            err(&[("page", "0")]).2,
            json!("Invalid pagination parameters: page number 0, page size undefined")
        );
        assert_eq!(err(&[("page", "x")]).1, "bad_request");
        assert_eq!(
            err(&[("page", "9"), ("page_size", "2")]).2,
            json!("Page out of range, page: 9 page size: 2, len: 6")
        );
    }

    #[test]
    fn name_filters_only_when_paging_and_sort_takes_dotted_columns() {
        let v = shape(
            names(12),
            &q(&[("page", "1"), ("name", "Q1"), ("columns", "name")]),
        )
        .expect("page");
        assert_eq!(v["filtered_count"], 3, "q1, q10, q11: {v}");
        let v = shape(
            names(3),
            &q(&[
                ("sort", "message_stats.publish"),
                ("sort_reverse", "true"),
                ("columns", "name,message_stats.publish"),
            ]),
        )
        .expect("list");
        assert_eq!(
            v,
            json!([{"name":"q2","message_stats":{"publish":2}},{"name":"q1","message_stats":{"publish":1}},{"name":"q0","message_stats":{"publish":0}}])
        );
        let v = shape(names(3), &q(&[("name", "q1")])).expect("list");
        assert_eq!(
            v.as_array().map(Vec::len),
            Some(3),
            "no filter without page"
        );
    }

    #[test]
    fn query_strings_are_decoded() {
        let pairs: Vec<(String, String)> = url_pairs("name=a%2Fb+c&x=100%").collect();
        assert_eq!(pairs[0], ("name".into(), "a/b c".into()));
        assert_eq!(pairs[1], ("x".into(), "100%".into()));
    }
}
