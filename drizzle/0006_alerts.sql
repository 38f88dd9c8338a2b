CREATE TABLE `alert_episodes` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`event` text NOT NULL,
	`subject` text NOT NULL,
	`opened_at` integer NOT NULL,
	`closed_at` integer,
	`facts` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `alert_episodes_open` ON `alert_episodes` (`event`,`subject`) WHERE closed_at IS NULL;--> statement-breakpoint
CREATE INDEX `alert_episodes_latest` ON `alert_episodes` (`event`,`subject`,`opened_at`);--> statement-breakpoint
CREATE TABLE `alert_messages` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`episode_id` integer,
	`event` text NOT NULL,
	`subject` text NOT NULL,
	`facts` text NOT NULL,
	`destination` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`created_at` integer NOT NULL,
	`sent_at` integer,
	`last_error` text,
	FOREIGN KEY (`episode_id`) REFERENCES `alert_episodes`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `alert_messages_due` ON `alert_messages` (`next_attempt_at`) WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX `alert_messages_created` ON `alert_messages` (`created_at`);