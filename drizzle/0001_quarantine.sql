CREATE TABLE `quarantine` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`received_at` integer NOT NULL,
	`code` text NOT NULL,
	`reason` text NOT NULL,
	`notification_uuid` text,
	`notification_type` text,
	`environment` text,
	`bundle_id` text,
	`bytes` integer NOT NULL,
	`body` blob NOT NULL,
	`released_at` integer,
	`released_as` text
);
