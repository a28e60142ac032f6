//! A writer's report of a batch's fate, as a reply stream carries it
//! (`--ack-after commit`): one stream entry with the field `r`, the id the
//! ingest process gave the batch, and `f`, its fate: `stored:<duplicates>`,
//! `duplicate` or `buffered`. The compact form of the previous version
//! (`s<duplicates>`, `d`, `b`) is still read, so that ingest processes and
//! writers of both versions can run side by side during an upgrade.

use redis::streams::StreamId;

use crate::domain::BatchFate;

/// A batch's fate, reported to the ingest process that waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The id the ingest process gave the batch (its waiter's key).
    pub waiter: String,
    /// What the writer did with it.
    pub fate: BatchFate,
}

/// Why an entry of a reply stream is not a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// A field is missing.
    #[error("a report without its {0:?} field")]
    Missing(&'static str),
    /// The fate is not one this version knows.
    #[error("a report with an unknown fate {0:?}")]
    Fate(String),
}

/// The field of the waiter's id.
const WAITER: &str = "r";
/// The field of the fate.
const FATE: &str = "f";

impl Report {
    /// The entry's fields, in order, for XADD.
    pub fn fields(&self) -> [(&'static str, String); 2] {
        [(WAITER, self.waiter.clone()), (FATE, fate_text(self.fate))]
    }

    /// The report an entry of a reply stream holds.
    pub fn from_entry(entry: &StreamId) -> Result<Report, ReportError> {
        let waiter: String = entry.get(WAITER).ok_or(ReportError::Missing(WAITER))?;
        let fate: String = entry.get(FATE).ok_or(ReportError::Missing(FATE))?;
        Ok(Report {
            waiter,
            fate: parse_fate(&fate)?,
        })
    }
}

fn fate_text(fate: BatchFate) -> String {
    match fate {
        BatchFate::Stored { duplicates } => format!("stored:{duplicates}"),
        BatchFate::Duplicate => "duplicate".into(),
        BatchFate::Buffered => "buffered".into(),
    }
}

fn parse_fate(text: &str) -> Result<BatchFate, ReportError> {
    let stored = |n: &str| {
        n.parse()
            .map(|duplicates| BatchFate::Stored { duplicates })
            .map_err(|_| ReportError::Fate(text.to_owned()))
    };
    match text {
        "duplicate" | "d" => Ok(BatchFate::Duplicate),
        "buffered" | "b" => Ok(BatchFate::Buffered),
        _ => match text
            .strip_prefix("stored:")
            .or_else(|| text.strip_prefix('s'))
        {
            Some(n) => stored(n),
            None => Err(ReportError::Fate(text.to_owned())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)]) -> StreamId {
        StreamId {
            id: "1-0".into(),
            map: fields
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        redis::Value::BulkString(v.as_bytes().to_vec()),
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn reports_cross_the_reply_stream_unchanged() {
        for fate in [
            BatchFate::Stored { duplicates: 0 },
            BatchFate::Stored { duplicates: 7 },
            BatchFate::Duplicate,
            BatchFate::Buffered,
        ] {
            let report = Report {
                waiter: "42".into(),
                fate,
            };
            let fields = report.fields();
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(Report::from_entry(&entry(&pairs)), Ok(report));
        }
    }

    #[test]
    fn the_previous_versions_compact_fates_are_read() {
        for (text, fate) in [
            ("s3", BatchFate::Stored { duplicates: 3 }),
            ("d", BatchFate::Duplicate),
            ("b", BatchFate::Buffered),
        ] {
            let got = Report::from_entry(&entry(&[("r", "1"), ("f", text)])).map(|r| r.fate);
            assert_eq!(got, Ok(fate));
        }
    }

    #[test]
    fn an_entry_that_is_not_a_report_says_why() {
        assert_eq!(
            Report::from_entry(&entry(&[("f", "duplicate")])),
            Err(ReportError::Missing("r"))
        );
        assert_eq!(
            Report::from_entry(&entry(&[("r", "1"), ("f", "x")])),
            Err(ReportError::Fate("x".into()))
        );
        assert_eq!(
            Report::from_entry(&entry(&[("r", "1"), ("f", "stored:many")])),
            Err(ReportError::Fate("stored:many".into()))
        );
    }
}
