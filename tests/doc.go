// Package tests holds pickup's end-to-end tests: the pickup binary in
// separate processes (gateway, projector, fetchers) sharing one embedded
// event log, views in a throwaway PostgreSQL, CARs in versitygw, and DAGs
// served by boxo peers on loopback, with processes killed and servers
// stopped along the way.
package tests
