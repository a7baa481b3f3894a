//! Cursor paging of Bybit v5 list endpoints, one rule for every paged call (public instruments,
//! private positions, orders, executions).
//!
//! Bybit's `nextPageCursor` is not empty on the last page: real answers carry the cursor of the
//! position after the last item, and asking with it returns an empty `list`. So paging stops on
//! an empty page, an empty cursor, or a cursor already followed (a venue that hands the same
//! cursor back would otherwise loop), and a page cap bounds the whole walk.

use crate::error::BybitError;
use std::collections::HashSet;
use std::future::Future;

/// Fetches pages with `fetch(cursor)` (`None` for the first page) until the list is exhausted
/// and returns every item in venue order. `fetch` answers `(items, nextPageCursor)`.
///
/// More than `max_pages` pages is a [`BybitError::Decode`]: a list that long is not the account
/// this engine trades, and a partial list must not pass for a complete one.
pub async fn collect_pages<T, F, Fut>(what: &str, max_pages: u32, mut fetch: F) -> Result<Vec<T>, BybitError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), BybitError>>,
{
    let mut out = Vec::new();
    let mut followed: HashSet<String> = HashSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..max_pages.max(1) {
        let (items, next) = fetch(cursor.take()).await?;
        let empty = items.is_empty();
        out.extend(items);
        let next = next.trim();
        if empty || next.is_empty() || !followed.insert(next.to_string()) {
            return Ok(out);
        }
        cursor = Some(next.to_string());
    }
    Err(BybitError::Decode(format!("{what}: more than {} pages", max_pages.max(1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A venue of `n` items in pages of `per`, whose cursor is the next index and stays
    /// non-empty on the last page (as Bybit's does); an index past the end gives an empty page.
    fn venue(n: usize, per: usize, cursor: Option<String>) -> Result<(Vec<usize>, String), BybitError> {
        let start = cursor.map(|c| c.trim_start_matches("idx%3D").parse::<usize>().unwrap()).unwrap_or(0);
        let items: Vec<usize> = (start..n.min(start + per)).collect();
        let next = if items.is_empty() { String::new() } else { format!("idx%3D{}", start + per) };
        Ok((items, next))
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn a_last_page_cursor_still_returns_every_item_exactly_once() {
        for (n, per) in [(0, 3), (1, 3), (3, 3), (7, 3), (9, 3), (10, 1)] {
            let mut calls = 0;
            let got = run(collect_pages("list", 50, |c| {
                calls += 1;
                std::future::ready(venue(n, per, c))
            }))
            .unwrap();
            assert_eq!(got, (0..n).collect::<Vec<_>>(), "n={n} per={per}");
            // One page per `per` items, plus the empty page the last cursor leads to.
            assert_eq!(calls, n.div_ceil(per) + 1, "n={n} per={per}");
        }
    }

    #[test]
    fn a_repeated_cursor_stops_the_walk() {
        let mut calls = 0;
        let got = run(collect_pages("list", 50, |c| {
            calls += 1;
            // Always answers the same page and the same cursor.
            let _ = c;
            std::future::ready(Ok::<_, BybitError>((vec![1, 2], "same".to_string())))
        }))
        .unwrap();
        assert_eq!(got, vec![1, 2, 1, 2], "the page behind the cursor is read once");
        assert_eq!(calls, 2);
        let empty_cursor = run(collect_pages("list", 50, |_| std::future::ready(Ok((vec![5], String::new())))));
        assert_eq!(empty_cursor.unwrap(), vec![5]);
    }

    #[test]
    fn the_page_cap_is_an_error_not_a_partial_list() {
        let r = run(collect_pages("positions", 3, |c| std::future::ready(venue(100, 2, c))));
        assert!(matches!(r, Err(BybitError::Decode(m)) if m.contains("positions") && m.contains("3 pages")));
        let failing =
            run(collect_pages::<u8, _, _>("x", 3, |_| std::future::ready(Err(BybitError::Timeout("t".into())))));
        assert!(matches!(failing, Err(BybitError::Timeout(_))));
    }
}
