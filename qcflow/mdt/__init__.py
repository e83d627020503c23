"""MDT and death-review discussions: requests, participants, sign-off, addenda, the booking gate's record."""
