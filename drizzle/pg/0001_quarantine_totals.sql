-- Written by hand after drizzle-kit generate --custom (it does not emit
-- triggers), as drizzle/0004 is for SQLite: the quarantine's running totals
-- in one row, so the cap check on each refused payload reads one row, and
-- every writer (any instance, the CLI) keeps them. Statement-level triggers
-- over transition tables: a pruning DELETE of many rows updates the totals
-- once, not once a row. Concurrent writers serialise on that row's lock, so
-- the totals stay exact with several instances.
INSERT INTO "quarantine_totals" ("id", "items", "bytes") SELECT 1, count(*), coalesce(sum("bytes"), 0) FROM "quarantine";
--> statement-breakpoint
CREATE FUNCTION "quarantine_totals_insert"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "quarantine_totals" SET "items" = "items" + (SELECT count(*) FROM added), "bytes" = "bytes" + (SELECT coalesce(sum("bytes"), 0) FROM added) WHERE "id" = 1;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER "quarantine_totals_insert" AFTER INSERT ON "quarantine" REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION "quarantine_totals_insert"();
--> statement-breakpoint
CREATE FUNCTION "quarantine_totals_delete"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "quarantine_totals" SET "items" = "items" - (SELECT count(*) FROM removed), "bytes" = "bytes" - (SELECT coalesce(sum("bytes"), 0) FROM removed) WHERE "id" = 1;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER "quarantine_totals_delete" AFTER DELETE ON "quarantine" REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION "quarantine_totals_delete"();
--> statement-breakpoint
-- PostgreSQL allows no column list (UPDATE OF bytes) on a trigger with
-- transition tables, so it runs on every UPDATE and adds the difference, zero
-- when bytes did not change (a release).
CREATE FUNCTION "quarantine_totals_bytes"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "quarantine_totals" SET "bytes" = "bytes" + (SELECT coalesce(sum("bytes"), 0) FROM after) - (SELECT coalesce(sum("bytes"), 0) FROM before) WHERE "id" = 1;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER "quarantine_totals_bytes" AFTER UPDATE ON "quarantine" REFERENCING OLD TABLE AS before NEW TABLE AS after FOR EACH STATEMENT EXECUTE FUNCTION "quarantine_totals_bytes"();
