//! The audit log: the filtered, paginated list and the streamed export.

use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, Backend, TestServer, backend_tests};
use crate::http::assert_error;

/// Usernames a spreadsheet would misread, sent as failed logins so they land in the log.
const HOSTILE: [&str; 9] = [
    "=1+1",
    "+SUM(A1:A2)",
    "-2+3",
    "@cmd",
    "\tTAB",
    "comma, inside",
    "say \"hi\"",
    "line one\nline two",
    "=HYPERLINK(\"http://x.test\",\"y\")",
];

fn admin_token(server: &TestServer) -> String {
    server.obtain_token_pair("admin", ADMIN_PASSWORD).access
}

fn logs_list_pages_newest_first(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    for attempt in 0..3 {
        server.login(&format!("nobody-{attempt}"), "wrong-password-123");
    }

    let first = server.get("/api/logs/?limit=2").bearer(&admin).send();
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.json();
    let ids: Vec<i64> =
        first["results"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{first}");
    assert!(ids[0] > ids[1], "newest first: {ids:?}");
    let cursor = first["next"].as_str().expect("a full page has a next cursor").to_owned();

    let second = server.get(&format!("/api/logs/?limit=2&cursor={cursor}")).bearer(&admin).send().json();
    let next_id = second["results"][0]["id"].as_i64().unwrap();
    assert!(next_id < ids[1], "the next page continues below the cursor: {second}");

    let failures = server.get("/api/logs/?action=auth.login&outcome=failure").bearer(&admin).send().json();
    let failures = failures["results"].as_array().unwrap().clone();
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert!(failures.iter().all(|e| e["outcome"] == "failure" && e["action"] == "auth.login"));

    let by_actor = server.get("/api/logs/?actor=nobody-1").bearer(&admin).send().json();
    assert_eq!(by_actor["results"].as_array().unwrap().len(), 1, "{by_actor}");
    let by_id = server.get("/api/logs/?actor=1&action=auth.login").bearer(&admin).send().json();
    assert!(by_id["results"].as_array().unwrap().iter().all(|e| e["actor_id"] == 1), "{by_id}");

    assert_error(&server.get("/api/logs/?from=yesterday").bearer(&admin).send(), 400, "invalid");
    assert_error(&server.get("/api/logs/?cursor=forged").bearer(&admin).send(), 400, "invalid");
    assert_error(&server.get("/api/logs/?outcome=maybe").bearer(&admin).send(), 400, "invalid");
    assert_error(&server.get("/api/logs/?limit=1&limit=2").bearer(&admin).send(), 400, "invalid");
    let huge = server.get("/api/logs/?limit=99999999999999999999").bearer(&admin).send();
    assert_eq!(huge.status, 200, "a huge limit is capped: {}", huge.body);
}

fn logs_time_filter_bounds(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    let future = server.get("/api/logs/?from=2999-01-01T00:00:00Z").bearer(&admin).send().json();
    assert_eq!(future["results"], json!([]), "{future}");
    assert_eq!(future["next"], Value::Null);
    let past = server.get("/api/logs/?to=2000-01-01T00:00:00Z").bearer(&admin).send().json();
    assert_eq!(past["results"], json!([]), "{past}");
}

/// Strips the `'` that the export puts before a formula-like cell.
fn restore(cell: &str) -> String {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest.to_owned(),
        _ => cell.to_owned(),
    }
}

fn export_csv_round_trips_hostile_cells(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);
    for username in HOSTILE {
        let response = server.login(username, "wrong-password-123");
        assert_error(&response, 401, "invalid_credentials");
    }
    let stored = server.database().audit_entries();

    let response = server.get("/api/logs/export/").bearer(&admin).send();
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.header("content-type").unwrap_or_default().starts_with("text/csv"));
    assert!(response.header("content-disposition").unwrap_or_default().starts_with("attachment"));

    let mut reader = csv::Reader::from_reader(response.body.as_bytes());
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        headers,
        [
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
            "details"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|row| row.unwrap()).collect();
    // The export also contains its own `logs.export` entry, written before it started.
    assert_eq!(rows.len(), stored.len() + 1, "one row per entry");

    for username in HOSTILE {
        let row = rows
            .iter()
            .find(|row| restore(&row[3]) == username)
            .unwrap_or_else(|| panic!("no row for {username:?}"));
        let cell = &row[3];
        if username.starts_with(['=', '+', '-', '@', '\t']) {
            assert!(cell.starts_with('\''), "{cell:?} must be neutralised");
        } else {
            assert_eq!(cell, username, "cells without a formula stay unchanged");
        }
    }
}

fn export_records_start_and_completion(backend: Backend) {
    let server = TestServer::start(backend);
    let admin = admin_token(&server);

    let response = server.get("/api/logs/export/?format=jsonl&action=auth.login").bearer(&admin).send();
    assert_eq!(response.status, 200, "{}", response.body);
    let lines: Vec<Value> = response.body.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(!lines.is_empty(), "the admin's login is exported");
    assert!(lines.iter().all(|entry| entry["action"] == "auth.login"), "{lines:?}");
    assert!(lines.windows(2).all(|pair| pair[0]["id"].as_i64() < pair[1]["id"].as_i64()), "oldest first");

    let entries = server.database().audit_entries();
    let started = entries.iter().find(|e| e.action == "logs.export").expect("logs.export recorded");
    let details: Value = serde_json::from_str(&started.details).unwrap();
    assert_eq!(details["filters"]["action"], "auth.login", "{details}");
    assert_eq!(details["format"], "jsonl");
    let completed =
        entries.iter().find(|e| e.action == "logs.export_completed").expect("completion recorded");
    let details: Value = serde_json::from_str(&completed.details).unwrap();
    assert_eq!(details["rows"].as_u64(), Some(lines.len() as u64), "{details}");
    assert_eq!(completed.outcome, "success");

    assert_error(&server.get("/api/logs/export/?format=xlsx").bearer(&admin).send(), 400, "invalid");
}

backend_tests!(
    logs_list_pages_newest_first,
    logs_time_filter_bounds,
    export_csv_round_trips_hostile_cells,
    export_records_start_and_completion,
);
