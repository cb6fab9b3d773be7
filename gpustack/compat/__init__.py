"""GPUStack's wire conventions in one place: pagination, error bodies, watch framing, lenient enums."""
