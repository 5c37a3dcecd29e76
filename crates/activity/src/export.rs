//! Exporting the audit log as CSV or JSON lines, oldest first, in chunks.
//!
//! The exporter reads a bounded chunk of rows, encodes it, and hands the bytes to a
//! sink before reading the next, so memory stays flat whatever the log size. The rows
//! exported are those present when the export started (ids up to the maximum then).

use finetune_core::db::DbConnection;

use crate::query::{Entry, Filter, chunk_oldest_first, max_id, rfc3339};

/// Rows read per query.
pub const CHUNK_ROWS: i64 = 2_000;

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 12] = [
    "id",
    "occurred_at",
    "actor_id",
    "actor_username",
    "action",
    "outcome",
    "target_type",
    "target_id",
    "ip",
    "user_agent",
    "request_id",
    "details",
];

/// The export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180 CSV with a header row; formula-like cells get a leading `'`.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl Format {
    /// Parses `csv` or `jsonl`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "csv" => Some(Self::Csv),
            "jsonl" => Some(Self::JsonLines),
            _ => None,
        }
    }

    /// Returns the MIME type of the download.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::JsonLines => "application/x-ndjson",
        }
    }

    /// Returns the file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::JsonLines => "jsonl",
        }
    }
}

/// The reason an export stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The database failed mid-export.
    #[error("database error during export: {0}")]
    Database(#[from] diesel::result::Error),
    /// Encoding a row failed.
    #[error("cannot encode row: {0}")]
    Encode(String),
    /// The sink refused more bytes (the client went away, or the disk is full).
    #[error("output closed: {0}")]
    SinkClosed(String),
}

/// Prefixes `'` to a cell that a spreadsheet would run as a formula: one starting with
/// `=`, `+`, `-`, `@`, a tab or a carriage return. Other cells are returned unchanged.
pub fn neutralize_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => std::borrow::Cow::Owned(format!("'{cell}")),
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

/// Writes one entry as a CSV record; text cells are borrowed, not copied.
fn write_csv_record(writer: &mut csv::Writer<Vec<u8>>, entry: &Entry) -> csv::Result<()> {
    writer.write_field(entry.id.to_string())?;
    writer.write_field(rfc3339(entry.occurred_at))?;
    writer.write_field(entry.actor_id.map(|id| id.to_string()).unwrap_or_default())?;
    let texts = [
        entry.actor_username.as_deref(),
        Some(entry.action.as_str()),
        Some(entry.outcome.as_str()),
        entry.target_type.as_deref(),
        entry.target_id.as_deref(),
        entry.ip.as_deref(),
        entry.user_agent.as_deref(),
        entry.request_id.as_deref(),
    ];
    for text in texts {
        writer.write_field(neutralize_formula(text.unwrap_or_default()).as_ref())?;
    }
    writer.write_field(neutralize_formula(&entry.details.to_string()).as_ref())?;
    writer.write_record(None::<&[u8]>)
}

/// Encodes the CSV header row.
pub fn csv_header() -> Result<Vec<u8>, ExportError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_COLUMNS).map_err(|error| ExportError::Encode(error.to_string()))?;
    writer.into_inner().map_err(|error| ExportError::Encode(error.to_string()))
}

/// Encodes entries in `format`: CSV rows without a header, or JSON lines.
pub fn encode(entries: &[Entry], format: Format) -> Result<Vec<u8>, ExportError> {
    match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(Vec::with_capacity(entries.len() * 200));
            for entry in entries {
                write_csv_record(&mut writer, entry)
                    .map_err(|error| ExportError::Encode(error.to_string()))?;
            }
            writer.into_inner().map_err(|error| ExportError::Encode(error.to_string()))
        }
        Format::JsonLines => {
            let mut buffer = Vec::with_capacity(entries.len() * 250);
            for entry in entries {
                serde_json::to_writer(&mut buffer, entry)
                    .map_err(|error| ExportError::Encode(error.to_string()))?;
                buffer.push(b'\n');
            }
            Ok(buffer)
        }
    }
}

/// Returns the upper id bound of an export: the newest entry when it starts.
pub fn snapshot_bound(connection: &mut DbConnection) -> Result<i64, ExportError> {
    Ok(max_id(connection)?)
}

/// Exports every entry matching `filter` with an id up to `up_to_id`, oldest first,
/// handing encoded chunks to `sink`. Returns the number of rows written. CSV from
/// PostgreSQL goes through `COPY` (see [`crate::copy`]); the rest reads keyset chunks.
pub fn export<S>(
    connection: &mut DbConnection,
    filter: &Filter,
    format: Format,
    up_to_id: i64,
    mut sink: S,
) -> Result<u64, ExportError>
where
    S: FnMut(Vec<u8>) -> Result<(), ExportError>,
{
    if let (Format::Csv, DbConnection::Postgresql(pg)) = (format, &mut *connection) {
        return crate::copy::export_csv(pg, filter, up_to_id, sink);
    }
    if format == Format::Csv {
        sink(csv_header()?)?;
    }
    let mut after_id = 0;
    let mut rows = 0u64;
    loop {
        let entries = chunk_oldest_first(connection, filter, after_id, up_to_id, CHUNK_ROWS)?;
        let Some(last) = entries.last() else {
            break;
        };
        after_id = last.id;
        rows += entries.len() as u64;
        sink(encode(&entries, format)?)?;
        if (entries.len() as i64) < CHUNK_ROWS {
            break;
        }
    }
    Ok(rows)
}

/// Builds the audit entry written when an export starts: the filters and the format.
pub fn started_entry(filter: &Filter, format: Format) -> crate::NewEntry {
    crate::NewEntry::new(crate::Action::LogsExport, crate::Outcome::Success)
        .detail("filters", filter.to_json())
        .detail("format", format.extension())
}

/// Builds the audit entry written when an export ends: the row count, or the failure.
pub fn completed_entry(result: &Result<u64, ExportError>) -> crate::NewEntry {
    match result {
        Ok(rows) => crate::NewEntry::new(crate::Action::LogsExportCompleted, crate::Outcome::Success)
            .detail("rows", *rows),
        Err(error) => crate::NewEntry::new(crate::Action::LogsExportCompleted, crate::Outcome::Failure)
            .detail("error", error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_get_quote_prefix() {
        for cell in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralize_formula(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn plain_cells_unchanged() {
        for cell in ["admin", "", "1+1", "a=b", "'quoted"] {
            assert_eq!(neutralize_formula(cell), cell, "{cell:?}");
        }
    }
}
