// Package api is the wire format of pickup's HTTP APIs, as JSON: the types
// the gateway encodes and every client (the `pickup pin` command's
// package api/client, the tests) decodes, declared once.
//
// The IPFS Pinning Service API (reference/ipfs-pinning-service.yaml): Pin,
// PinStatus, PinResults, the error body Failure ({"error":{"reason",
// "details"}}) with the reasons pickup sends, the four statuses, the name
// matching strategies, and the Info* keys of PinStatus.info that pickup
// sets. Beside them, the ipfs-cluster shapes the cluster-compatible routes
// answer with: ClusterPin (POST and DELETE /pins/{cid}, GET /allocations),
// ClusterStatus with its ClusterPeerInfo (GET /pins/{cid}, and one per line
// of GET /pins?cids=), the status and filter names, and the error body
// ClusterError ({"code","message"}).
//
// Timestamps are Time: RFC 3339 in UTC with all six digits of the
// microseconds, so that a client paging with before=<oldest created> sends
// back exactly the value it read.
//
// The package imports only the standard library, so that anything that
// speaks the API, including code built for GOOS=js or GOOS=wasip1, can use
// it (`make wasm` builds and tests it there).
package api
