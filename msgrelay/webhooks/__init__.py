"""Producer status webhooks (DESIGN §9): events written by database triggers, delivered in signed batches at
least once, retried with backoff for a day, then `dead` until an operator retries them.

`signing` (the header, pure), `events` (event bodies from outbox rows), `receivers` (a job's receiver, resolved at
submit), `policy` (the retry schedule), `deliver` (claim, POST, record), `operations` (list, retry, test), `listener` (a
local receiver for the demo and the benchmark).
"""
