package postgres

// WithVersion sets the tables' version of a store, for tests that run two
// versions side by side.
func WithVersion(o Options, version int) Options { o.version = version; return o }

// SetupVersion sets the version Setup makes.
func SetupVersion(o SetupOptions, version int) SetupOptions { o.version = version; return o }

// CloseConnections closes every connection of the store's pool; the next
// operation connects anew (what a server restart or a proxy's reconnect
// does).
func (s *Store) CloseConnections() { s.pool.pool.Reset() }

// Schema is the schema the store reads and writes.
func (s *Store) Schema() string { return s.schema }
