-- Deployment-mode runs (docs/center.md): the Deployment the center drives, its start
-- barrier, its deadlines and what removing it did; and the leases that give each
-- runner pod its share. Booleans are BIGINT 0/1, portable to both databases.

CREATE TABLE deployments (
    run_id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    created_by_center BIGINT NOT NULL,
    -- Every share must be leased by then (ms since the epoch).
    start_by BIGINT NOT NULL,
    -- The longest the test can run, for the reporting deadline.
    max_duration_ms BIGINT NOT NULL,
    -- Set once, when the last share is leased.
    start_at BIGINT,
    report_by BIGINT,
    -- The Cleanup JSON, once the finished run's objects are removed.
    cleanup TEXT
);

CREATE TABLE leases (
    run_id TEXT NOT NULL,
    idx BIGINT NOT NULL,
    pod TEXT NOT NULL,
    process TEXT NOT NULL,
    renewed BIGINT NOT NULL,
    -- The holder was told the start: a later holder cannot run this share again.
    started BIGINT NOT NULL,
    PRIMARY KEY (run_id, idx)
);
