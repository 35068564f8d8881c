ALTER TABLE `labels` ADD `suggested_ranking` text;--> statement-breakpoint
ALTER TABLE `pairs` ADD `gold_ranking` text;