//! Offset pagination as GitLab's REST API does it: `page` (default 1) and `per_page` (default
//! 20, at most 100), and the `X-Page`, `X-Per-Page`, `X-Next-Page`, `X-Prev-Page`, `X-Total`,
//! `X-Total-Pages` and `Link` headers.

use std::collections::BTreeMap;

use super::reply::{self, Reply};
use super::request::Params;

pub const DEFAULT_PER_PAGE: u64 = 20;
pub const MAX_PER_PAGE: u64 = 100;

/// The page asked for.
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    pub page: u64,
    /// As asked (the `Link` URLs repeat it), before the cap.
    pub asked_per_page: u64,
    /// What a page holds: `asked_per_page` capped to 1..=100.
    pub per_page: u64,
}

impl Paging {
    /// `page` and `per_page` (400 `{"error":"page is invalid"}` for a non-integer).
    pub fn from_params(params: &Params) -> Result<Self, Reply> {
        let mut errors = Vec::new();
        let page = params.integer("page", &mut errors);
        let per_page = params.integer("per_page", &mut errors);
        if !errors.is_empty() {
            return Err(reply::bad_params(&errors));
        }
        let page = page.filter(|p| *p >= 1).map_or(1, |p| p as u64);
        let asked_per_page = per_page
            .filter(|p| *p >= 1)
            .map_or(DEFAULT_PER_PAGE, |p| p as u64);
        Ok(Self {
            page,
            asked_per_page,
            per_page: asked_per_page.min(MAX_PER_PAGE),
        })
    }

    /// The items of this page of `items`, and the pagination headers. `url` is the request's
    /// URL without its query; `params` its parameters with the route's `id`, which the `Link`
    /// URLs carry sorted by name, as Rails' `to_query` writes them.
    pub fn apply<'a, T>(
        &self,
        items: &'a [T],
        url: &str,
        params: BTreeMap<String, String>,
    ) -> (&'a [T], Vec<(String, String)>) {
        let total = items.len() as u64;
        let pages = total.div_ceil(self.per_page);
        let out_of_range = self.page > pages;
        let next = (self.page < pages).then_some(self.page + 1);
        let prev = (self.page > 1 && !out_of_range).then_some(self.page - 1);
        let last = pages.max(1);
        let start = ((self.page - 1) * self.per_page).min(total) as usize;
        let end = (self.page * self.per_page).min(total) as usize;

        let href = |page: u64| {
            let mut query = params.clone();
            query.insert("page".into(), page.to_string());
            query.insert("per_page".into(), self.asked_per_page.to_string());
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query.iter())
                .finish();
            format!("{url}?{encoded}")
        };
        let mut links = Vec::new();
        if let Some(prev) = prev {
            links.push(format!("<{}>; rel=\"prev\"", href(prev)));
        }
        if let Some(next) = next {
            links.push(format!("<{}>; rel=\"next\"", href(next)));
        }
        links.push(format!("<{}>; rel=\"first\"", href(1)));
        links.push(format!("<{}>; rel=\"last\"", href(last)));

        let text = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let headers = vec![
            ("X-Per-Page".into(), self.per_page.to_string()),
            ("X-Page".into(), self.page.to_string()),
            ("X-Next-Page".into(), text(next)),
            ("X-Prev-Page".into(), text(prev)),
            ("Link".into(), links.join(", ")),
            ("X-Total".into(), total.to_string()),
            ("X-Total-Pages".into(), last.to_string()),
        ];
        (&items[start..end], headers)
    }
}
