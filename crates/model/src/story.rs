//! Stories: surges of one release that share a cause, told once.

use serde::{Deserialize, Serialize};

/// What ties a story's surges together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoryKind {
    /// Many countries rising on one category in one period (a sports event, a visa change).
    Category,
    /// One country rising across categories in one period.
    Country,
    /// Much of a source jumping at once: more often a change of method than news.
    Source,
}

/// The story a surge belongs to, on the surge event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoryRef {
    /// `st-` and 20 hex digits of release, kind and key: stable.
    pub id: String,
    pub kind: StoryKind,
    /// A headline for the group ("study rose for 5 countries in 2024-Q3").
    pub title: String,
    /// How many surges of the release the story holds.
    pub members: usize,
}
