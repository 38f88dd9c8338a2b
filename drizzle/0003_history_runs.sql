CREATE TABLE `history_runs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`kind` text NOT NULL,
	`run_key` text NOT NULL,
	`bundle_id` text NOT NULL,
	`environment` text NOT NULL,
	`start_date` integer NOT NULL,
	`end_date` integer NOT NULL,
	`only_failures` integer NOT NULL,
	`pagination_token` text,
	`pages` integer DEFAULT 0 NOT NULL,
	`seen` integer DEFAULT 0 NOT NULL,
	`added` integer DEFAULT 0 NOT NULL,
	`already` integer DEFAULT 0 NOT NULL,
	`refused` integer DEFAULT 0 NOT NULL,
	`started_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`finished_at` integer,
	`last_error` text
);
--> statement-breakpoint
CREATE INDEX `history_runs_key` ON `history_runs` (`run_key`,`finished_at`);--> statement-breakpoint
CREATE INDEX `history_runs_kind` ON `history_runs` (`kind`,`environment`,`started_at`);