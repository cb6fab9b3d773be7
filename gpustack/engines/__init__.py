"""Engine knowledge shared by the server (validation, pre-selection) and the worker (launch)."""
