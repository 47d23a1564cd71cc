"""Routes across accounts (DESIGN §9, docs/ROUTES.md): `config` (`[routes.NAME]`, checked at start-up), `health`
(which accounts are paused, and why), `pick` (the account a chunk goes through: failover in order, or weighted)."""
