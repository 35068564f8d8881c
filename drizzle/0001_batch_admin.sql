CREATE TABLE `label_batch_members` (
	`batch_id` text NOT NULL,
	`user_id` text NOT NULL,
	PRIMARY KEY(`batch_id`, `user_id`),
	FOREIGN KEY (`batch_id`) REFERENCES `label_batches`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
ALTER TABLE `label_batches` ADD `labeler_quota` integer;--> statement-breakpoint
ALTER TABLE `label_batches` ADD `suggestions` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `labels` ADD `suggested` text;