"""``dacirco node-agent``: pilot workers on a machine that is not ours, while its owner leaves
it idle (see docs/runtimes.md, "Pilot workers on idle machines")."""
