// Package viewrow is what the view stores (projections/embedded,
// projections/postgres) share and nobody else sees: the rows of the views
// (PinRow and its columns, meta, tenant, token and counter rows), the pure
// step from a batch of events to the rows it changes (Prepare, then
// Batch.Project), the compact encoding of a pin's folded state in its row,
// the plan of a listing (PlanList), and the dump both stores write so that
// their contents compare equal.
//
// Everything here is pure: a store loads the rows a batch touches, calls
// Project, and writes the changes with the new checkpoint in one
// transaction.
package viewrow
