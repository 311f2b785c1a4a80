"""Staff web pages: the counter verification page and the reviewers' duplicate queue."""
