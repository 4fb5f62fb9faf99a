//! The activity tail: reads `/v1/activity` (limit/offset only, no cursor) from the newest end back
//! to a high-water mark, dedupes by request id, detects the log's order, resets and gaps through
//! `Content-Range`, and appends what is new to the outbox together with the new mark.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::audit::error::AuditError;
use crate::connect::client::{ActivityPage, ConnectClient};
use crate::connect::model::ApiRequest;
use crate::store::{LogOrder, Store, TailMark};

/// How the tail reads.
#[derive(Clone, Debug)]
pub struct TailOptions {
    /// Records per request.
    pub page_size: u32,
    /// How far below the mark each read goes again (records logged late with an older
    /// timestamp); ids already in the outbox are skipped.
    pub lookback: Duration,
}

/// What one read of the log did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TailReport {
    /// `/v1/activity` requests made.
    pub requests: u32,
    /// Records fetched (with the ones already known).
    pub read: u64,
    /// Records new to the outbox.
    pub added: u64,
    /// The log's total, from `Content-Range`.
    pub total: Option<u64>,
    pub order: LogOrder,
    /// The log has fewer records than before and none reaches back to the mark: it was reset.
    pub reset: bool,
    /// The whole log was read without reaching the mark, and it was not a reset: records
    /// between the mark and the oldest one kept were pruned before opsync read them.
    pub gap: bool,
    /// Records that fell off the old end since the last read (from the totals).
    pub pruned: u64,
    pub duration: Duration,
}

/// The tail over one Connect server.
pub struct Tail {
    client: ConnectClient,
    store: Store,
    options: TailOptions,
}

/// The log's records in log order, oldest first, as read in one pass.
struct Pass {
    records: Vec<ApiRequest>,
    total: Option<u64>,
    requests: u32,
    /// The pass reached a page wholly below the floor (false: it read to the oldest record).
    reached_floor: bool,
    order: LogOrder,
}

impl Tail {
    pub fn new(client: ConnectClient, store: Store, options: TailOptions) -> Self {
        Self {
            client,
            store,
            options,
        }
    }

    /// Reads what is new since the mark into the outbox.
    pub async fn poll(&self) -> Result<TailReport, AuditError> {
        let started = Instant::now();
        let mark = self.store.audit_mark()?;
        let floor = mark
            .at
            .map(|at| at - chrono::Duration::from_std(self.options.lookback).unwrap_or_default());
        let pass = self.read(&mark, floor).await?;
        let known: HashSet<&str> = mark.ids.iter().map(String::as_str).collect();
        let mut seen = HashSet::new();
        let fresh: Vec<ApiRequest> = pass
            .records
            .iter()
            .filter(|r| floor.is_none_or(|f| r.timestamp >= f))
            .filter(|r| !(Some(r.timestamp) == mark.at && known.contains(r.request_id.as_str())))
            .filter(|r| seen.insert(r.request_id.as_str()))
            .cloned()
            .collect();
        let newest = pass.records.iter().map(|r| r.timestamp).max();
        let mut next = TailMark {
            at: mark.at.max(newest),
            ids: Vec::new(),
            total: pass.total.or(mark.total),
            order: if pass.order == LogOrder::Unknown {
                mark.order
            } else {
                pass.order
            },
            polled_at: Some(Utc::now()),
        };
        if next.at == mark.at {
            next.ids = mark.ids.clone();
        }
        let mut at_mark: HashSet<String> = next.ids.iter().cloned().collect();
        for r in &pass.records {
            if Some(r.timestamp) == next.at && at_mark.insert(r.request_id.clone()) {
                next.ids.push(r.request_id.clone());
            }
        }
        let read = pass.records.len() as u64;
        let saw_mark = mark
            .at
            .is_some_and(|at| pass.records.iter().any(|r| r.timestamp <= at));
        let shrunk = matches!((mark.total, pass.total), (Some(before), Some(now)) if now < before);
        let reset = mark.at.is_some() && !pass.reached_floor && !saw_mark && shrunk;
        let gap = mark.at.is_some() && !pass.reached_floor && !saw_mark && !reset;
        let records = fresh;
        let saved = next.clone();
        let added = self
            .store
            .blocking(move |store| store.audit_append(&records, false, Some(&saved)))
            .await?;
        let pruned = match (mark.total, pass.total) {
            (Some(before), Some(now)) if !reset => (before + added).saturating_sub(now),
            _ => 0,
        };
        if pass.order != LogOrder::Unknown
            && mark.order != LogOrder::Unknown
            && pass.order != mark.order
        {
            tracing::warn!(
                before = mark.order.as_str(),
                now = pass.order.as_str(),
                "Connect's activity log changed its order"
            );
        }
        Ok(TailReport {
            requests: pass.requests,
            read,
            added,
            total: pass.total,
            order: next.order,
            reset,
            gap,
            pruned,
            duration: started.elapsed(),
        })
    }

    /// One pass from the newest end of the log back to `floor` (everything when `None`).
    async fn read(
        &self,
        mark: &TailMark,
        floor: Option<DateTime<Utc>>,
    ) -> Result<Pass, AuditError> {
        let size = self.options.page_size.max(1);
        let below = |page: &ActivityPage| {
            floor.is_some_and(|f| {
                !page.records.is_empty() && page.records.iter().all(|r| r.timestamp < f)
            })
        };
        let first = self.client.activity(size, 0).await?;
        let mut requests = 1;
        let mut total = first.range.and_then(|r| r.total);
        let order = match mark.order {
            LogOrder::Unknown => order_of(&first.records),
            known => {
                let seen = order_of(&first.records);
                if seen == LogOrder::Unknown {
                    known
                } else {
                    seen
                }
            }
        };
        match order {
            LogOrder::OldestFirst if total.is_some_and(|t| t > u64::from(size)) => {
                // Offsets count from the oldest record: walk back from the end.
                let mut pages: Vec<Vec<ApiRequest>> = Vec::new();
                let mut end = total.unwrap_or(0);
                let mut reached_floor = false;
                while end > 0 {
                    let start = end.saturating_sub(u64::from(size));
                    let page = self.client.activity((end - start) as u32, start).await?;
                    requests += 1;
                    if let Some(t) = page.range.and_then(|r| r.total) {
                        total = Some(t);
                    }
                    let stop = below(&page);
                    pages.push(page.records);
                    if stop {
                        reached_floor = true;
                        break;
                    }
                    end = start;
                }
                let records = pages.into_iter().rev().flatten().collect();
                Ok(Pass {
                    records,
                    total,
                    requests,
                    reached_floor,
                    order,
                })
            }
            _ => {
                // Newest first, or oldest first in one page, or not known yet: read forward from
                // offset 0 (until a page is wholly below the floor when newest first).
                let newest_first = order == LogOrder::NewestFirst;
                let mut reached_floor = newest_first && below(&first);
                let mut done = reached_floor || first.records.len() < size as usize;
                let mut all = first.records;
                let mut offset = all.len() as u64;
                while !done {
                    let page = self.client.activity(size, offset).await?;
                    requests += 1;
                    if let Some(t) = page.range.and_then(|r| r.total) {
                        total = Some(t);
                    }
                    offset += page.records.len() as u64;
                    reached_floor = newest_first && below(&page);
                    done = reached_floor || page.records.len() < size as usize;
                    all.extend(page.records);
                }
                let order = if order == LogOrder::Unknown {
                    order_of(&all)
                } else {
                    order
                };
                if order != LogOrder::OldestFirst {
                    all.reverse();
                }
                Ok(Pass {
                    records: all,
                    total,
                    requests,
                    reached_floor,
                    order,
                })
            }
        }
    }
}

/// The order of records read in one run of offsets, from the first and last timestamps.
fn order_of(records: &[ApiRequest]) -> LogOrder {
    match (records.first(), records.last()) {
        (Some(a), Some(b)) if a.timestamp > b.timestamp => LogOrder::NewestFirst,
        (Some(a), Some(b)) if a.timestamp < b.timestamp => LogOrder::OldestFirst,
        _ => LogOrder::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::model::{ActivityAction, ActivityResult};

    fn rec(id: &str, ms: i64) -> ApiRequest {
        ApiRequest {
            request_id: id.into(),
            timestamp: DateTime::from_timestamp_millis(ms).unwrap_or_default(),
            action: ActivityAction::Read,
            result: ActivityResult::Success,
            actor: Default::default(),
            resource: None,
        }
    }

    #[test]
    fn order_comes_from_the_ends() {
        assert_eq!(
            order_of(&[rec("a", 3), rec("b", 2), rec("c", 1)]),
            LogOrder::NewestFirst
        );
        assert_eq!(order_of(&[rec("a", 1), rec("b", 2)]), LogOrder::OldestFirst);
        assert_eq!(order_of(&[rec("a", 1), rec("b", 1)]), LogOrder::Unknown);
        assert_eq!(order_of(&[]), LogOrder::Unknown);
    }
}
