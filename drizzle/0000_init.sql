CREATE TABLE `attempts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`delivery_id` integer NOT NULL,
	`attempt` integer NOT NULL,
	`started_at` integer NOT NULL,
	`duration_ms` integer NOT NULL,
	`status_code` integer,
	`error` text,
	`response_excerpt` text,
	FOREIGN KEY (`delivery_id`) REFERENCES `deliveries`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `attempts_delivery` ON `attempts` (`delivery_id`);--> statement-breakpoint
CREATE TABLE `deliveries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`notification_id` text NOT NULL,
	`target` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`lease_until` integer,
	`fence` integer DEFAULT 0 NOT NULL,
	`retry_since` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`delivered_at` integer,
	`last_status_code` integer,
	`last_error` text,
	FOREIGN KEY (`notification_id`) REFERENCES `notifications`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `deliveries_notification_target` ON `deliveries` (`notification_id`,`target`);--> statement-breakpoint
CREATE INDEX `deliveries_due` ON `deliveries` (`target`,`next_attempt_at`) WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX `deliveries_target_status` ON `deliveries` (`target`,`status`);--> statement-breakpoint
CREATE TABLE `heartbeat` (
	`id` integer PRIMARY KEY NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `notifications` (
	`id` text PRIMARY KEY NOT NULL,
	`dedupe_key` text NOT NULL,
	`received_at` integer NOT NULL,
	`source` text NOT NULL,
	`version` integer NOT NULL,
	`notification_uuid` text,
	`notification_type` text NOT NULL,
	`subtype` text,
	`environment` text,
	`bundle_id` text,
	`app_apple_id` text,
	`signed_date` integer,
	`original_transaction_id` text,
	`transaction_id` text,
	`product_id` text,
	`app_account_token` text,
	`verification` text NOT NULL,
	`verification_error` text,
	`body` blob NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `notifications_dedupe_key` ON `notifications` (`dedupe_key`);--> statement-breakpoint
CREATE INDEX `notifications_type` ON `notifications` (`notification_type`,`received_at`);--> statement-breakpoint
CREATE INDEX `notifications_original_transaction_id` ON `notifications` (`original_transaction_id`);--> statement-breakpoint
CREATE INDEX `notifications_bundle_id` ON `notifications` (`bundle_id`,`received_at`);--> statement-breakpoint
CREATE INDEX `notifications_environment` ON `notifications` (`environment`,`received_at`);