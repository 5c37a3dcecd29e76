//! `/api/logs/`: the audit log, newest first, and its streamed export.

use std::io;

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use finetune_activity::export::{self, ExportError, Format};
use finetune_activity::query::{ActorFilter, Filter, list_newest_first};
use finetune_activity::{NewEntry, Outcome, record};
use finetune_core::db::write_transaction;
use finetune_rbac::Permission;
use serde::Deserialize;

use crate::authorize::{Actor, Requirement, authorize};
use crate::blocking::with_connection;
use crate::error::ApiError;
use crate::extract::{Authenticated, Context};
use crate::pagination::{decode_cursor, encode_cursor, parse_limit};
use crate::state::AppState;

/// Encoded chunks buffered between the database reader and the client.
const EXPORT_BUFFERED_CHUNKS: usize = 4;

/// The query of the list and the export.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    from: Option<String>,
    to: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
    format: Option<String>,
}

fn parse_time(field: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| ApiError::invalid_field(field, "Enter an RFC 3339 time such as 2026-01-31T12:00:00Z."))
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn parse_filter(query: &LogQuery) -> Result<Filter, ApiError> {
    let outcome = match non_empty(&query.outcome) {
        Some(name) => Some(
            Outcome::parse(name)
                .ok_or_else(|| ApiError::invalid_field("outcome", "Enter success, failure or denied."))?,
        ),
        None => None,
    };
    Ok(Filter {
        from: non_empty(&query.from).map(|v| parse_time("from", v)).transpose()?,
        to: non_empty(&query.to).map(|v| parse_time("to", v)).transpose()?,
        actor: non_empty(&query.actor).map(ActorFilter::parse),
        action: non_empty(&query.action).map(str::to_owned),
        outcome,
    })
}

/// `GET /api/logs/`: `{"results": [ENTRY], "next": CURSOR or null}`.
pub async fn list(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &context.0, &auth, &[Requirement::Permission(Permission::LogsRead)]).await?;
    let filter = parse_filter(&query)?;
    let before_id = non_empty(&query.cursor).map(decode_cursor).transpose()?;
    let limit = parse_limit(query.limit.as_deref())?;

    let (entries, next) = with_connection(&state, move |connection| {
        let mut entries = list_newest_first(connection, &filter, before_id, limit + 1)?;
        let has_more = entries.len() as i64 > limit;
        entries.truncate(limit as usize);
        let next = if has_more { entries.last().map(|entry| encode_cursor(entry.id)) } else { None };
        Ok((entries, next))
    })
    .await?;

    Ok(HttpResponse::Ok().json(serde_json::json!({"results": entries, "next": next})))
}

fn with_actor(entry: NewEntry, actor: &Actor) -> NewEntry {
    entry.actor(Some(actor.id), Some(&actor.username))
}

/// `GET /api/logs/export/`: the whole filtered log as a download, oldest first.
///
/// `logs.export` is recorded before the first byte; `logs.export_completed` with the
/// row count (or the failure) once the last chunk is handed over. A failure midway
/// aborts the response, so a client never takes a cut-off file for a whole one.
pub async fn export(
    state: web::Data<AppState>,
    context: Context,
    auth: Authenticated,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor =
        authorize(&state, &context.0, &auth, &[Requirement::Permission(Permission::LogsExport)]).await?;
    let filter = parse_filter(&query)?;
    let format = match non_empty(&query.format) {
        None => Format::Csv,
        Some(name) => {
            Format::parse(name).ok_or_else(|| ApiError::invalid_field("format", "Enter csv or jsonl."))?
        }
    };

    let now = state.clock.now();
    let started_context = context.0.clone();
    let (started_filter, started_actor) = (filter.clone(), actor.clone());
    let up_to_id = with_connection(&state, move |connection| {
        write_transaction(connection, |connection| {
            let entry = with_actor(export::started_entry(&started_filter, format), &started_actor);
            record(connection, &entry, &started_context, now)?;
            export::snapshot_bound(connection).map_err(ApiError::internal)
        })
    })
    .await?;

    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(EXPORT_BUFFERED_CHUNKS);
    let pool = state.pool.clone();
    let clock = state.clock.clone();
    let context = context.0.clone();
    let span = tracing::Span::current();
    actix_web::rt::task::spawn_blocking(move || {
        let _entered = span.enter();
        let mut connection = match pool.get() {
            Ok(connection) => connection,
            Err(error) => {
                tracing::error!(%error, "export could not get a database connection");
                let _ = sender.blocking_send(Err(io::Error::other("database unavailable")));
                return;
            }
        };
        let result = export::export(&mut connection, &filter, format, up_to_id, |bytes| {
            sender
                .blocking_send(Ok(Bytes::from(bytes)))
                .map_err(|_| ExportError::SinkClosed("the client closed the connection".into()))
        });
        let completed = with_actor(export::completed_entry(&result), &actor);
        let recorded = write_transaction(&mut connection, |connection| {
            record(connection, &completed, &context, clock.now())
        });
        if let Err(error) = recorded {
            tracing::error!(%error, "cannot record the end of an export");
        }
        match result {
            Ok(rows) => tracing::info!(rows, "export finished"),
            Err(error) => {
                tracing::warn!(%error, "export failed");
                let _ = sender.blocking_send(Err(io::Error::other("export failed")));
            }
        }
    });

    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let filename = format!("audit-log-{}.{}", now.format("%Y%m%dT%H%M%SZ"), format.extension());
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, format.content_type()))
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(filename)],
        })
        .streaming(stream))
}
