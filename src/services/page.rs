//! Keyset pages: a cursor is the list's sort key plus the row's id, so a page never skips
//! or repeats a row when others are inserted meanwhile, and the database seeks with an
//! index instead of counting past an OFFSET. Every list that grows pages this way; the
//! GraphQL connection around a page is built in `schema::connection`.

use base64::Engine;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition};
use uuid::Uuid;

use crate::error::{Error, Result};

pub(crate) const DEFAULT_FIRST: u64 = 20;
pub(crate) const MAX_FIRST: u64 = 100;

/// A position in a list sorted by (timestamp, id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Cursor {
    pub(crate) at: DateTime<Utc>,
    pub(crate) id: Uuid,
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        let raw = format!("{}|{}", self.at.timestamp_micros(), self.id);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub(crate) fn decode(s: &str) -> Option<Cursor> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (micros, id) = raw.split_once('|')?;
        let micros: i64 = micros.parse().ok()?;
        // Years 1970 to 9999: every database can hold those, so a forged cursor is a bad
        // argument, not a database error.
        if !(0..=253_402_300_799_000_000).contains(&micros) {
            return None;
        }
        Some(Cursor {
            at: DateTime::from_timestamp_micros(micros)?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Validated `first` and `after` arguments.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Page {
    pub(crate) first: u64,
    pub(crate) after: Option<Cursor>,
}

impl Page {
    pub(crate) fn new(first: Option<i32>, after: Option<&str>) -> Result<Page> {
        let first = match first {
            None => DEFAULT_FIRST,
            Some(n) if (0..=MAX_FIRST as i32).contains(&n) => n as u64,
            Some(_) => {
                return Err(Error::bad_input(
                    "first",
                    format!("first must be between 0 and {MAX_FIRST}"),
                ))
            }
        };
        let after = match after {
            None => None,
            Some(s) => Some(
                Cursor::decode(s)
                    .ok_or_else(|| Error::bad_input("after", "after is not a valid cursor"))?,
            ),
        };
        Ok(Page { first, after })
    }

    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub(crate) fn limit(&self) -> u64 {
        self.first + 1
    }

    /// Rows after the cursor in a list sorted by (`at`, `id`) descending (newest first).
    pub(crate) fn after_desc<C: ColumnTrait>(&self, at: C, id: C) -> Condition {
        match self.after {
            None => Condition::all(),
            Some(c) => Condition::any()
                .add(at.lt(c.at))
                .add(Condition::all().add(at.eq(c.at)).add(id.lt(c.id))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let c = Cursor {
            at: DateTime::from_timestamp_micros(1_760_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("nope"), None);
        let far = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            "{}|{}",
            i64::MAX / 2,
            Uuid::now_v7()
        ));
        assert_eq!(Cursor::decode(&far), None);
    }

    #[test]
    fn first_is_bounded() {
        assert!(Page::new(Some(101), None).is_err());
        assert!(Page::new(Some(-1), None).is_err());
        assert_eq!(Page::new(None, None).unwrap().first, 20);
        assert_eq!(Page::new(Some(0), None).unwrap().first, 0);
    }
}
