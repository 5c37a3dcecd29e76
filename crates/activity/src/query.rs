//! Reading the audit log: filters and keyset pagination by id.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use finetune_core::db::DbConnection;
use finetune_core::db::schema::audit_log;
use serde::Serialize;

use crate::Outcome;

/// Who acted: a user id, or a username at the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorFilter {
    /// `actor_id` equals this.
    Id(i64),
    /// `actor_username` equals this.
    Username(String),
}

impl ActorFilter {
    /// Parses the `actor` parameter: an integer is a user id, anything else a username.
    pub fn parse(value: &str) -> Self {
        match value.parse::<i64>() {
            Ok(id) => Self::Id(id),
            Err(_) => Self::Username(value.to_owned()),
        }
    }
}

/// The filters of a list or an export; every one is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Entries at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Entries at or before this time.
    pub to: Option<DateTime<Utc>>,
    /// The actor.
    pub actor: Option<ActorFilter>,
    /// The action name, such as `auth.login`.
    pub action: Option<String>,
    /// The outcome.
    pub outcome: Option<Outcome>,
}

impl Filter {
    /// Returns the filters as a JSON object, for the audit entry of an export.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        if let Some(from) = self.from {
            map.insert("from".into(), rfc3339(from).into());
        }
        if let Some(to) = self.to {
            map.insert("to".into(), rfc3339(to).into());
        }
        match &self.actor {
            Some(ActorFilter::Id(id)) => {
                map.insert("actor".into(), (*id).into());
            }
            Some(ActorFilter::Username(name)) => {
                map.insert("actor".into(), name.clone().into());
            }
            None => {}
        }
        if let Some(action) = &self.action {
            map.insert("action".into(), action.clone().into());
        }
        if let Some(outcome) = self.outcome {
            map.insert("outcome".into(), outcome.as_str().into());
        }
        serde_json::Value::Object(map)
    }
}

/// Formats a time as RFC 3339 in UTC with microseconds and a `Z`, as both databases
/// store it.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// One audit entry (`ENTRY` in the contract).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The id; ids grow with time.
    pub id: i64,
    /// When it happened, RFC 3339 UTC.
    #[serde(serialize_with = "serialize_time")]
    pub occurred_at: DateTime<Utc>,
    /// The acting user, if known.
    pub actor_id: Option<i64>,
    /// The actor's username at the time, if known.
    pub actor_username: Option<String>,
    /// The action name.
    pub action: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// The kind of object acted on.
    pub target_type: Option<String>,
    /// The id of the object acted on.
    pub target_id: Option<String>,
    /// The client IP.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
    /// Further facts, a JSON object.
    pub details: serde_json::Value,
}

fn serialize_time<S: serde::Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(*time))
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
struct EntryRow {
    id: i64,
    occurred_at: NaiveDateTime,
    actor_id: Option<i64>,
    actor_username: Option<String>,
    action: String,
    outcome: String,
    target_type: Option<String>,
    target_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    details: String,
}

impl From<EntryRow> for Entry {
    fn from(row: EntryRow) -> Self {
        let details = serde_json::from_str(&row.details).unwrap_or(serde_json::Value::String(row.details));
        Self {
            id: row.id,
            occurred_at: row.occurred_at.and_utc(),
            actor_id: row.actor_id,
            actor_username: row.actor_username,
            action: row.action,
            outcome: row.outcome,
            target_type: row.target_type,
            target_id: row.target_id,
            ip: row.ip,
            user_agent: row.user_agent,
            request_id: row.request_id,
            details,
        }
    }
}

fn filtered<'a>(filter: &Filter) -> audit_log::BoxedQuery<'a, finetune_core::db::MultiBackend> {
    let mut query = audit_log::table.into_boxed();
    if let Some(from) = filter.from {
        query = query.filter(audit_log::occurred_at.ge(from.naive_utc()));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_log::occurred_at.le(to.naive_utc()));
    }
    match &filter.actor {
        Some(ActorFilter::Id(id)) => query = query.filter(audit_log::actor_id.eq(*id)),
        Some(ActorFilter::Username(name)) => query = query.filter(audit_log::actor_username.eq(name.clone())),
        None => {}
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_log::action.eq(action.clone()));
    }
    if let Some(outcome) = filter.outcome {
        query = query.filter(audit_log::outcome.eq(outcome.as_str()));
    }
    query
}

/// Lists entries newest first: those with an id below `before_id` (the cursor), at most
/// `limit`.
pub fn list_newest_first(
    connection: &mut DbConnection,
    filter: &Filter,
    before_id: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Entry>> {
    let mut query = filtered(filter);
    if let Some(before_id) = before_id {
        query = query.filter(audit_log::id.lt(before_id));
    }
    let rows: Vec<EntryRow> =
        query.select(EntryRow::as_select()).order(audit_log::id.desc()).limit(limit).load(connection)?;
    Ok(rows.into_iter().map(Entry::from).collect())
}

/// Reads one export chunk oldest first: ids above `after_id` and at most `up_to_id`.
pub fn chunk_oldest_first(
    connection: &mut DbConnection,
    filter: &Filter,
    after_id: i64,
    up_to_id: i64,
    limit: i64,
) -> QueryResult<Vec<Entry>> {
    let rows: Vec<EntryRow> = filtered(filter)
        .filter(audit_log::id.gt(after_id))
        .filter(audit_log::id.le(up_to_id))
        .select(EntryRow::as_select())
        .order(audit_log::id.asc())
        .limit(limit)
        .load(connection)?;
    Ok(rows.into_iter().map(Entry::from).collect())
}

/// Returns the highest entry id, or 0 for an empty log.
pub fn max_id(connection: &mut DbConnection) -> QueryResult<i64> {
    use diesel::dsl::max;
    Ok(audit_log::table.select(max(audit_log::id)).first::<Option<i64>>(connection)?.unwrap_or(0))
}
