"""What decides: pure functions and values (candidates, policy, waits, state and its
transitions, liveness, groups, allowed IPs, the options table and value checks, the
model types). Imports nothing of the other layers."""
