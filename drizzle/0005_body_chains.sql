CREATE TABLE `body_chains` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`digest` text NOT NULL,
	`chain` blob NOT NULL,
	`first_seen_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `body_chains_digest` ON `body_chains` (`digest`);--> statement-breakpoint
ALTER TABLE `notifications` ADD `body_encoding` text DEFAULT 'raw' NOT NULL;--> statement-breakpoint
ALTER TABLE `notifications` ADD `body_chain_id` integer REFERENCES body_chains(id);--> statement-breakpoint
CREATE INDEX `notifications_raw_body` ON `notifications` (`id`) WHERE body_encoding = 'raw';--> statement-breakpoint
ALTER TABLE `quarantine` ADD `body_encoding` text DEFAULT 'raw' NOT NULL;--> statement-breakpoint
ALTER TABLE `quarantine` ADD `body_chain_id` integer REFERENCES body_chains(id);--> statement-breakpoint
CREATE INDEX `quarantine_raw_body` ON `quarantine` (`id`) WHERE body_encoding = 'raw';