"""The lifecycle of jobs, workers, tasks and parts, written once.

``Core.handle(stimulus, now, txn)`` is synchronous and pure: no I/O, no clock, no asyncio.
It changes the state it owns and returns the effects to run (launch or stop a worker, wake
a worker, delete objects, log events); the rows to persist are what the step's ``Txn``
touched. The controller (``dacirco.controller``) and the simulator (``dacirco.sim``) are two
thin shells that feed it stimuli and carry out its effects.
"""
