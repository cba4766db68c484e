-- One row per namespace: the generation of the gearmand that owns it.
-- Each server bumps the generation when it opens the store, and every
-- write transaction first calls gearmand_fence with the generation it
-- was given. The fence holds FOR SHARE on the row until the transaction
-- ends, so the bump of a server taking the namespace over waits for the
-- writes already past the fence to commit or roll back (its replay then
-- sees them), and a write of an older generation that reaches the fence
-- later fails with SQLSTATE GMD01 and changes nothing.
CREATE TABLE gearmand_owners (
    namespace  text   PRIMARY KEY,
    generation bigint NOT NULL CHECK (generation > 0)
);

CREATE FUNCTION gearmand_fence(ns text, gen bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    g bigint;
BEGIN
    SELECT generation INTO g FROM gearmand_owners WHERE namespace = ns FOR SHARE;
    IF g IS DISTINCT FROM gen THEN
        RAISE EXCEPTION USING
            ERRCODE = 'GMD01',
            MESSAGE = format('namespace %s was taken over by another gearmand (generation %s; this one is generation %s)',
                quote_literal(ns), coalesce(g::text, 'none'), gen);
    END IF;
END
$$;

---- create above / drop below ----

DROP FUNCTION gearmand_fence(text, bigint);
DROP TABLE gearmand_owners;
