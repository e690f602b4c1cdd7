package linux

// legacyOpenCalls makes no call on arm64: it has only openat and openat2.
func legacyOpenCalls(string, func(string, uintptr, ...uintptr) uintptr, func(string) uintptr) {}

// legacyOpenWants: none on arm64.
func legacyOpenWants(string) []openWant { return nil }
