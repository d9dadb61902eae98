-- The center's schema, for SQLite and PostgreSQL alike: portable types only (TEXT,
-- BIGINT, DOUBLE PRECISION), no autoincrement, no BLOB. Instants are milliseconds
-- since the Unix epoch; JSON documents are TEXT.

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    test TEXT NOT NULL,
    app TEXT,
    mode TEXT NOT NULL,
    started_by TEXT,
    scenario TEXT NOT NULL,
    runners BIGINT NOT NULL,
    labels TEXT NOT NULL,
    status TEXT NOT NULL,
    created BIGINT NOT NULL,
    started BIGINT,
    ended BIGINT,
    -- SHA-256 (hex) of the CreateRun body, so a re-sent registration is recognised.
    request_hash TEXT NOT NULL,
    -- The runner token is derived from this nonce and the center's token; only its
    -- SHA-256 is stored.
    runner_token_nonce TEXT NOT NULL,
    runner_token_hash TEXT NOT NULL,
    finish_reason TEXT,
    summary TEXT,
    requests BIGINT,
    error_rate DOUBLE PRECISION,
    p99_ms DOUBLE PRECISION,
    duration_s DOUBLE PRECISION
);

CREATE INDEX runs_by_created ON runs (created);
CREATE INDEX runs_by_test ON runs (test, created);
CREATE INDEX runs_by_status ON runs (status);
CREATE UNIQUE INDEX runs_by_runner_token ON runs (runner_token_hash);

CREATE TABLE runners (
    run_id TEXT NOT NULL,
    idx BIGINT NOT NULL,
    state TEXT NOT NULL,
    summary TEXT,
    message TEXT,
    updated BIGINT NOT NULL,
    PRIMARY KEY (run_id, idx)
);

CREATE TABLE points (
    run_id TEXT NOT NULL,
    idx BIGINT NOT NULL,
    t BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    point TEXT NOT NULL,
    PRIMARY KEY (run_id, idx, t)
);
