"""Sending policy (DESIGN §9): what may go out, checked before any provider call.

`suppressions` (the opt-out list, fed by replies too), `caps` (messages per recipient per day or hour, counted
in the database under row locks), `holds` (send windows, validity, and the screen a chunk passes right before
it is sent). The rules themselves are values in `providers.sending_rules`.
"""
