ALTER TABLE `assignments` ADD `shown_order` text;--> statement-breakpoint
ALTER TABLE `label_batches` ADD `kind` text DEFAULT 'pairwise' NOT NULL;--> statement-breakpoint
ALTER TABLE `label_batches` ADD `pair_rule` text DEFAULT 'all' NOT NULL;--> statement-breakpoint
ALTER TABLE `labels` ADD `ranking` text;--> statement-breakpoint
ALTER TABLE `pairs` ADD `response_ids` text;