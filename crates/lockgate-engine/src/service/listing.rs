//! The list of pipelines as the console shows it: pipelines waiting for approval first, then
//! the rest, each part by name; searchable by name and filterable by the latest execution's
//! status. Every page is one index scan of the store (`index` keeps each pipeline record's
//! label and position true), so a page costs the page, not the installation.

use lockgate_shapes::{ErrorCode, ServiceError};
use lockgate_store::{Collection, Cursor, Scan};

use super::{err, index, internal, PipelineService};
use crate::paging;

/// The most rows one page holds.
pub const MAX_PAGE: usize = 200;

/// Which pipelines a page lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingQuery {
    /// Only pipelines whose name contains this text (ASCII case ignored).
    pub search: Option<String>,
    /// Only pipelines whose latest execution has this status (`InProgress`, `Succeeded`, ...,
    /// or `None` for pipelines that never ran).
    pub status: Option<String>,
    /// Only pipelines waiting for approval.
    pub awaiting_only: bool,
    /// Continue after the page that returned this token.
    pub next_token: Option<String>,
    /// At most this many rows (1 to [`MAX_PAGE`]).
    pub limit: usize,
}

/// One pipeline in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingRow {
    /// The pipeline's name.
    pub name: String,
    /// Its latest execution's status, or `None` if it never ran.
    pub status: Option<String>,
    /// Whether an approval of it waits for an answer.
    pub awaiting: bool,
}

/// One page of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingPage {
    /// The rows, waiting for approval first, then by name.
    pub rows: Vec<ListingRow>,
    /// The token for the next page, if there is one.
    pub next_token: Option<String>,
}

/// How far [`PipelineService::awaiting_count`] counts.
pub const COUNT_LIMIT: usize = 10_000;

/// How many pipelines wait for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwaitingCount {
    /// The count, at most [`COUNT_LIMIT`].
    pub count: usize,
    /// Whether there may be more than `count` (the count stopped at its limit).
    pub at_least: bool,
}

impl PipelineService {
    /// One page of the list of pipelines.
    pub async fn pipeline_listing(&self, q: ListingQuery) -> Result<ListingPage, ServiceError> {
        let limit = q.limit.clamp(1, MAX_PAGE);
        let after = match paging::decode(q.next_token.as_deref())? {
            Some(cursor) => Some(decode_cursor(&cursor)?),
            None => None,
        };
        let mut scan = Scan::new(Collection::Pipeline, limit + 1)
            .by_position()
            .after(after);
        if let Some(text) = q.search.filter(|t| !t.is_empty()) {
            scan = scan.key_contains(text);
        }
        if let Some(status) = q.status {
            scan = scan.label(status);
        }
        let mut records = self.store.scan(scan).await.map_err(internal)?;
        if q.awaiting_only {
            // Those waiting sort first: the list of them ends at the first that does not wait.
            if let Some(end) = records.iter().position(|r| r.position != 0) {
                records.truncate(end);
            }
        }
        let more = records.len() > limit;
        records.truncate(limit);
        let next_token = more
            .then(|| {
                records
                    .last()
                    .map(|r| paging::encode(&encode_cursor(&r.cursor())))
            })
            .flatten();
        let rows = records
            .into_iter()
            .map(|r| ListingRow {
                status: r.label.filter(|l| l != index::NO_EXECUTIONS),
                awaiting: r.position == 0,
                name: r.key,
            })
            .collect();
        Ok(ListingPage { rows, next_token })
    }

    /// How many pipelines wait for approval, counted up to [`COUNT_LIMIT`] (waiting pipelines
    /// sort first, so this walks only the front of the index).
    pub async fn awaiting_count(&self) -> Result<AwaitingCount, ServiceError> {
        let mut count = 0usize;
        let mut after = None;
        while count < COUNT_LIMIT {
            let page = self
                .store
                .scan(
                    Scan::new(Collection::Pipeline, 1000)
                        .by_position()
                        .after(after),
                )
                .await
                .map_err(internal)?;
            let waiting = page.iter().take_while(|r| r.position == 0).count();
            count += waiting;
            if waiting < 1000 {
                return Ok(AwaitingCount {
                    count,
                    at_least: false,
                });
            }
            after = page.last().map(|r| r.cursor());
        }
        Ok(AwaitingCount {
            count,
            at_least: true,
        })
    }
}

fn encode_cursor(c: &Cursor) -> String {
    format!("{}/{}", c.position, c.key)
}

fn decode_cursor(s: &str) -> Result<Cursor, ServiceError> {
    let (position, key) = s.split_once('/').ok_or_else(paging::invalid)?;
    let position = position.parse().map_err(|_| paging::invalid())?;
    if key.is_empty() {
        return Err(err(
            ErrorCode::InvalidNextTokenException,
            "The next token is not valid",
        ));
    }
    Ok(Cursor {
        position,
        key: key.to_string(),
    })
}
