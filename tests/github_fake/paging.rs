//! Pagination of list endpoints: `per_page` (default 30, at most 100), `page`, the `Link` header.

use serde_json::Value;

use super::api::Request;

/// The requested page of `items`, and the `Link` header pointing at the others (none when all
/// fit on one page). `url` is the list's absolute URL without a query.
pub fn paginate(items: &[Value], request: &Request, url: &str) -> (Vec<Value>, Option<String>) {
    let per_page = match request
        .param("per_page")
        .and_then(|p| p.parse::<usize>().ok())
    {
        Some(0) | None => 30,
        Some(n) => n.min(100),
    };
    let page = request
        .param("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let slice = items
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .cloned()
        .collect();
    let link =
        |page: usize, rel: &str| format!("<{url}?per_page={per_page}&page={page}>; rel=\"{rel}\"");
    let mut links = Vec::new();
    if page > 1 {
        links.push(link(page.min(last + 1) - 1, "prev"));
    }
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
    }
    let link = (!links.is_empty()).then(|| links.join(", "));
    (slice, link)
}
