"""Pure types and errors shared by the server and the worker."""
