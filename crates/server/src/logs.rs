//! `finetune logs export`: the HTTP export's output, written to a file or standard
//! output, with the same audit entries.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use finetune_activity::export::{self, ExportError, Format};
use finetune_activity::query::{ActorFilter, Filter};
use finetune_activity::{Outcome, record};
use finetune_core::RequestContext;
use finetune_core::db::write_transaction;
use finetune_core::settings::Settings;

use crate::commands::{CommandError, connect};

/// The filters as given on the command line.
#[derive(Debug, Default)]
pub struct ExportFilters {
    /// `--from`.
    pub from: Option<String>,
    /// `--to`.
    pub to: Option<String>,
    /// `--actor`.
    pub actor: Option<String>,
    /// `--action`.
    pub action: Option<String>,
    /// `--outcome`.
    pub outcome: Option<String>,
}

fn parse_time(option: &str, value: &str) -> Result<DateTime<Utc>, CommandError> {
    DateTime::parse_from_rfc3339(value).map(|time| time.with_timezone(&Utc)).map_err(|error| {
        CommandError::Message(format!(
            "--{option} {value:?}: expected an RFC 3339 time such as 2026-01-31T12:00:00Z ({error})"
        ))
    })
}

fn filter(filters: &ExportFilters) -> Result<Filter, CommandError> {
    let outcome = match filters.outcome.as_deref() {
        Some(name) => Some(Outcome::parse(name).ok_or_else(|| {
            CommandError::Message(format!("--outcome {name:?}: expected success, failure or denied"))
        })?),
        None => None,
    };
    Ok(Filter {
        from: filters.from.as_deref().map(|v| parse_time("from", v)).transpose()?,
        to: filters.to.as_deref().map(|v| parse_time("to", v)).transpose()?,
        actor: filters.actor.as_deref().map(ActorFilter::parse),
        action: filters.action.clone(),
        outcome,
    })
}

/// Runs the export.
pub fn export(
    settings: &Settings,
    filters: &ExportFilters,
    format: &str,
    output: Option<&Path>,
) -> Result<(), CommandError> {
    let filter = filter(filters)?;
    let format = Format::parse(format)
        .ok_or_else(|| CommandError::Message(format!("--format {format:?}: expected csv or jsonl")))?;
    let mut writer: BufWriter<Box<dyn Write>> =
        match output {
            Some(path) => BufWriter::new(Box::new(File::create(path).map_err(|error| {
                CommandError::Message(format!("cannot create {}: {error}", path.display()))
            })?)),
            None => BufWriter::new(Box::new(std::io::stdout().lock())),
        };

    let mut connection = connect(settings)?;
    let context = RequestContext::command_line();
    let up_to_id = write_transaction(&mut connection, |connection| {
        let started = export::started_entry(&filter, format).detail("via", "command_line");
        record(connection, &started, &context, Utc::now())?;
        export::snapshot_bound(connection).map_err(|error| CommandError::Message(error.to_string()))
    })?;

    let mut result = export::export(&mut connection, &filter, format, up_to_id, |bytes| {
        writer.write_all(&bytes).map_err(|error| ExportError::SinkClosed(error.to_string()))
    });
    if let Ok(rows) = result
        && let Err(error) = writer.flush()
    {
        result = Err(ExportError::SinkClosed(format!("{error} after {rows} rows")));
    }

    let completed = export::completed_entry(&result).detail("via", "command_line");
    write_transaction(&mut connection, |connection| record(connection, &completed, &context, Utc::now()))?;
    let rows = result.map_err(|error| CommandError::Message(format!("export failed: {error}")))?;
    eprintln!("exported {rows} audit entries");
    Ok(())
}
