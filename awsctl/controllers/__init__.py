"""kopf handlers, kept thin: observe -> plan -> apply -> write status."""
