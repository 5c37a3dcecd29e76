-- Counters that writers bump in the transaction of a change, so every instance can
-- tell by polling one row that its cached state is out of date.
CREATE TABLE change_counters (
    name TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO change_counters (name, value) VALUES ('user_state', 0);
