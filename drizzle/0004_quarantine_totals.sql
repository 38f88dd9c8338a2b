CREATE TABLE `quarantine_totals` (
	`id` integer PRIMARY KEY NOT NULL,
	`items` integer NOT NULL,
	`bytes` integer NOT NULL
);
--> statement-breakpoint
-- Written by hand after drizzle-kit generate (it does not emit triggers).
-- `bytes` now counts everything a row keeps that a sender controls: the body
-- and the text stored beside it (store.ts quarantineBytes does the same).
UPDATE `quarantine` SET `bytes` = length(`body`) + length(CAST(`code` AS BLOB)) + length(CAST(`reason` AS BLOB))
  + coalesce(length(CAST(`notification_uuid` AS BLOB)), 0) + coalesce(length(CAST(`notification_type` AS BLOB)), 0)
  + coalesce(length(CAST(`environment` AS BLOB)), 0) + coalesce(length(CAST(`bundle_id` AS BLOB)), 0);
--> statement-breakpoint
INSERT INTO `quarantine_totals` (`id`, `items`, `bytes`) SELECT 1, count(*), coalesce(sum(`bytes`), 0) FROM `quarantine`;
--> statement-breakpoint
CREATE TRIGGER `quarantine_totals_insert` AFTER INSERT ON `quarantine` BEGIN
  UPDATE `quarantine_totals` SET `items` = `items` + 1, `bytes` = `bytes` + NEW.`bytes` WHERE `id` = 1;
END;
--> statement-breakpoint
CREATE TRIGGER `quarantine_totals_delete` AFTER DELETE ON `quarantine` BEGIN
  UPDATE `quarantine_totals` SET `items` = `items` - 1, `bytes` = `bytes` - OLD.`bytes` WHERE `id` = 1;
END;
--> statement-breakpoint
CREATE TRIGGER `quarantine_totals_bytes` AFTER UPDATE OF `bytes` ON `quarantine` BEGIN
  UPDATE `quarantine_totals` SET `bytes` = `bytes` - OLD.`bytes` + NEW.`bytes` WHERE `id` = 1;
END;
