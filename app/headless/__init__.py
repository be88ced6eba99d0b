"""The headless path: the `masklet` CLI, prompts files, one video's run, batch."""
