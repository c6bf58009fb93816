"""Device kinds beyond the CPU, each loaded on first use by `backend.kind(name)`: a module
named for the device type with a `load(op)` that returns a `backend.ArrayKind` (or raises a
DeviceError saying what is missing)."""
