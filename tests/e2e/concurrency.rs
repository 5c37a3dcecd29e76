//! Concurrent rotation of one refresh token.

use std::sync::Barrier;
use std::thread;

use serde_json::json;

use crate::harness::{ADMIN_PASSWORD, ADMIN_USERNAME, Backend, TestServer, backend_tests, new_agent};
use crate::http::{Response, TokenPair, assert_error};

const THREADS: usize = 50;

backend_tests!(token_refresh_race_has_one_winner);

fn token_refresh_race_has_one_winner(backend: Backend) {
    let server = TestServer::start(backend);
    let pair = server.obtain_token_pair(ADMIN_USERNAME, ADMIN_PASSWORD);
    let barrier = Barrier::new(THREADS);

    // Each thread opens its connection before the barrier, so the refreshes reach the
    // server together instead of behind 50 TCP handshakes. The warm-up is checked after
    // the barrier, so a failing thread cannot leave the others waiting.
    let responses: Vec<Response> = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    let agent = new_agent();
                    let warm_up = server.get("/healthz").via(&agent).send();
                    barrier.wait();
                    assert_eq!(warm_up.status, 200, "/healthz before the race: {}", warm_up.body);
                    server
                        .post("/api/auth/token/refresh/")
                        .via(&agent)
                        .json(&json!({"refresh": pair.refresh}))
                        .send()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|_| panic!("a refresh thread panicked")))
            .collect()
    });

    let summary: Vec<String> =
        responses.iter().map(|response| format!("{} {}", response.status, response.body)).collect();
    let winners: Vec<&Response> = responses.iter().filter(|response| response.status == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one concurrent refresh succeeds: {summary:#?}");
    for response in responses.iter().filter(|response| response.status != 200) {
        assert_eq!(response.status, 401, "every other refresh gets 401: {summary:#?}");
        let code = response.json()["code"].as_str().unwrap_or_default().to_owned();
        assert!(
            code == "token_reused" || code == "token_not_valid",
            "a losing refresh answers token_reused or token_not_valid, got {code:?}: {summary:#?}"
        );
    }

    let successor = TokenPair::from_response(winners[0]);
    let after_race = server.refresh_token(&successor.refresh);
    assert_error(&after_race, 401, "token_not_valid");
}
