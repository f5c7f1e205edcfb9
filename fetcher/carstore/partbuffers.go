package carstore

// partBuffers is a free list of part buffers of one size, keeping at most
// a fixed number idle: an upload takes Concurrency+1 buffers at most (the
// one being filled and those in flight), so a store that keeps twice that
// serves two uploads at once without allocating, and holds at most that
// many when idle. Unlike a sync.Pool, what it keeps does not depend on the
// garbage collector (or the race detector, which drops a share of what a
// pool is given), so an upload's memory is bounded and predictable.
type partBuffers struct {
	size int64
	free chan *[]byte
}

func newPartBuffers(size int64, keep int) partBuffers {
	return partBuffers{size: size, free: make(chan *[]byte, keep)}
}

// get returns an idle buffer, or a new one when none is idle.
func (p partBuffers) get() *[]byte {
	select {
	case b := <-p.free:
		return b
	default:
		b := make([]byte, p.size)
		return &b
	}
}

// put keeps b for a later get, or drops it when enough are kept.
func (p partBuffers) put(b *[]byte) {
	select {
	case p.free <- b:
	default:
	}
}
