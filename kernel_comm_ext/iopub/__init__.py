"""ipykernel's IOPub thread taken over: the wire, the scheduler, lossless sending."""
