-- One row per durable background job. Rows of several gearmand servers
-- share the table and are told apart by namespace; seq is the server's
-- sequence number, the job's identity and its replay order.
--
-- Handle, function, unique and reducer are bytea because they may hold
-- any bytes (NULs and invalid UTF-8 included; a handle carries the host
-- name the server was given). Times are timestamptz for people reading
-- the table, plus the nanoseconds past their microsecond (timestamptz
-- stops at microseconds; the store returns the instant it was given).
-- attempts is bigint because it holds a uint32.
CREATE TABLE gearmand_jobs (
    namespace     text        NOT NULL,
    seq           bigint      NOT NULL CHECK (seq >= 0),
    handle        bytea       NOT NULL,
    function      bytea       NOT NULL,
    unique_key    bytea       NOT NULL,
    data          bytea       NOT NULL,
    priority      smallint    NOT NULL CHECK (priority BETWEEN 0 AND 2),
    run_at        timestamptz NULL,
    run_at_nanos  smallint    NOT NULL DEFAULT 0 CHECK (run_at_nanos BETWEEN 0 AND 999),
    reducer       bytea       NOT NULL,
    attempts      bigint      NOT NULL CHECK (attempts BETWEEN 0 AND 4294967295),
    created       timestamptz NULL,
    created_nanos smallint    NOT NULL DEFAULT 0 CHECK (created_nanos BETWEEN 0 AND 999),
    PRIMARY KEY (namespace, seq)
);

---- create above / drop below ----

DROP TABLE gearmand_jobs;
