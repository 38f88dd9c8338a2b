CREATE INDEX `notifications_subtype` ON `notifications` (`subtype`,`received_at`);--> statement-breakpoint
CREATE INDEX `notifications_verification` ON `notifications` (`verification`,`received_at`);--> statement-breakpoint
CREATE INDEX `notifications_product_id` ON `notifications` (`product_id`,`received_at`);--> statement-breakpoint
CREATE INDEX `notifications_app_apple_id` ON `notifications` (`app_apple_id`,`received_at`);--> statement-breakpoint
CREATE INDEX `notifications_signed_date` ON `notifications` (`signed_date`);--> statement-breakpoint
CREATE INDEX `notifications_transaction_id` ON `notifications` (`transaction_id`);--> statement-breakpoint
CREATE INDEX `notifications_app_account_token` ON `notifications` (`app_account_token`) WHERE app_account_token IS NOT NULL;