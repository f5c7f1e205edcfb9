package api

// The ipfs-cluster shapes, as ipfs-cluster v1.1.6's REST API writes them
// (api/types.go there) and web3-storage/pickup answered its
// cluster-compatible routes (reference/pickup-README.md): the fields
// ipfs-cluster clients parse, most of them fixed, for a one-peer "cluster"
// whose peer is the first delegate.

// TrackerStatus is a pin's status in ipfs-cluster's words.
type TrackerStatus string

// The statuses pickup reports, mapped from the Pinning Service API's.
const (
	TrackerPinQueued TrackerStatus = "pin_queued" // queued
	TrackerPinning   TrackerStatus = "pinning"    // pinning
	TrackerPinned    TrackerStatus = "pinned"     // pinned
	TrackerPinError  TrackerStatus = "pin_error"  // failed
	// TrackerUnpinned: the tenant never asked for the CID, or removed it.
	TrackerUnpinned TrackerStatus = "unpinned"
)

// TrackerStatusNames are every name ipfs-cluster gives a status or a
// status filter (TrackerStatusFromString there): the values of the filter
// parameter of GET /pins. "error" and "queued" are filters only (every
// error, every queue); "undefined" is no status at all. pickup reports five
// of them (above); a filter may name any.
func TrackerStatusNames() []string {
	return []string{"undefined", "cluster_error", "pin_error", "unpin_error", "error", "pinned", "pinning",
		"unpinning", "unpinned", "remote", "pin_queued", "unpin_queued", "queued", "sharded", "unexpectedly_unpinned"}
}

// PinTypeNames are the values of the filter parameter of GET /allocations
// (ipfs-cluster's PinTypeFromString), "all" being every type; every pin
// pickup holds is a "pin", the type of a plain, unsharded pin.
func PinTypeNames() []string {
	return []string{"pin", "meta-pin", "clusterdag-pin", "shard-pin", "all"}
}

// ClusterError is ipfs-cluster's error body, the answer to every request
// of the cluster routes that does not succeed: {"code":400,"message":"..."}.
// Code repeats the HTTP status (ipfs-cluster's clients read it from the
// body: a 0 there means the call itself failed, and they retry); Message
// says what went wrong.
type ClusterError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// ClusterPin is ipfs-cluster's Pin object, the answer to POST /pins/{cid}
// and DELETE /pins/{cid}, and one per line of GET /allocations.
type ClusterPin struct {
	ReplicationFactorMin int               `json:"replication_factor_min"`
	ReplicationFactorMax int               `json:"replication_factor_max"`
	Name                 string            `json:"name"`
	Mode                 string            `json:"mode"`
	ShardSize            int               `json:"shard_size"`
	UserAllocations      []string          `json:"user_allocations"`
	ExpireAt             Time              `json:"expire_at"`
	Metadata             map[string]string `json:"metadata"`
	PinUpdate            *string           `json:"pin_update"`
	Origins              []string          `json:"origins"`
	CID                  string            `json:"cid"`
	Type                 string            `json:"type"`
	Allocations          []string          `json:"allocations"`
	MaxDepth             int               `json:"max_depth"`
	Reference            *string           `json:"reference"`
	// Timestamp is when the pin was requested: the same for every POST of
	// the same pin.
	Timestamp Time `json:"timestamp"`
}

// ClusterStatus is ipfs-cluster's GlobalPinInfo, the answer to GET
// /pins/{cid} and POST /pins/{cid}/recover, and one per line of GET /pins
// and POST /pins/recover: the pin's status on each peer, keyed by peer id.
type ClusterStatus struct {
	CID         string                     `json:"cid"`
	Name        string                     `json:"name"`
	Allocations []string                   `json:"allocations"`
	Origins     []string                   `json:"origins"`
	Created     Time                       `json:"created"`
	Metadata    map[string]string          `json:"metadata"`
	PeerMap     map[string]ClusterPeerInfo `json:"peer_map"`
}

// ClusterPeerInfo is ipfs-cluster's PinInfoShort: the pin on one peer.
type ClusterPeerInfo struct {
	PeerName          string        `json:"peername"`
	IPFSPeerID        string        `json:"ipfs_peer_id"`
	IPFSPeerAddresses []string      `json:"ipfs_peer_addresses"`
	Status            TrackerStatus `json:"status"`
	Timestamp         Time          `json:"timestamp"`
	// Error is the failure's reason and message, when Status is
	// TrackerPinError.
	Error        string `json:"error"`
	AttemptCount int    `json:"attempt_count"`
	PriorityPin  bool   `json:"priority_pin"`
}
