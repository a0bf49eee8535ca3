"""Change events to a message broker (SPEC §6): the relay and what it reads and writes.

The history of SPEC §5 is the outbox: the transaction that changes a row
already records the change. `flask events relay` reads committed changes in
sync order (feed.py), turns each into a message that names what changed but
carries no values (messages.py), publishes windows of them with publisher
confirms (publisher.py), and stores how far the broker confirmed
(position.py), one relay at a time (lock.py); relay.py is the loop and
status.py the lag that /metrics shows.

Only relay.py and publisher.py import the broker client, and only the
relay command imports them: the API and `flask sync` never load it.
"""
