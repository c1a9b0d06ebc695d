package lab

// PowerState reports whether the host is powered off (PowerOff without a
// PowerOn since) and whether it is frozen (Freeze without a Thaw since).
// It never waits: ok is false while a lab operation (a power or freeze
// operation, a partition, a process start) holds the lab's lock, so that a
// poller sampling every few milliseconds is not held up for the second a
// PowerOn can take; the caller then keeps its last answer.
func (h *Host) PowerState() (off, frozen, ok bool) {
	if !h.lab.mu.TryLock() {
		return false, false, false
	}
	defer h.lab.mu.Unlock()
	return h.off, h.frozen, true
}
