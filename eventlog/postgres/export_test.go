package postgres

// WaitReadAhead waits until the pages being read ahead, if any, are read,
// so that a test can append after them knowingly.
func (s *Store) WaitReadAhead() {
	s.ahead.mu.Lock()
	pages := append([]*prefetch(nil), s.ahead.next...)
	s.ahead.mu.Unlock()
	for _, p := range pages {
		<-p.done
	}
}

// LookUpSQL is the statement every commit runs to decide its batch.
const LookUpSQL = lookUpSQL
