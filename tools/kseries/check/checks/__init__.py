"""Check plug-ins, one module each; see kseries.check.context.Check."""
