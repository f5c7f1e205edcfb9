package postgres

// WaitReadAhead waits until the page being read ahead, if any, is read, so
// that a test can append after it knowingly.
func (s *Store) WaitReadAhead() {
	s.ahead.mu.Lock()
	p := s.ahead.next
	s.ahead.mu.Unlock()
	if p != nil {
		<-p.done
	}
}
