ALTER TABLE "body_chains" DROP CONSTRAINT "body_chains_digest_unique";--> statement-breakpoint
CREATE UNIQUE INDEX "body_chains_digest" ON "body_chains" USING btree ("digest");--> statement-breakpoint
CREATE INDEX "notifications_raw_body" ON "notifications" USING btree ("id") WHERE body_encoding = 'raw';--> statement-breakpoint
CREATE INDEX "quarantine_raw_body" ON "quarantine" USING btree ("id") WHERE body_encoding = 'raw';