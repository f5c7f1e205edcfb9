package bitswap

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"strconv"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// MinSeedBytes is the shortest seed SlotKey accepts: 256 bits, what the
// keys it derives carry.
const MinSeedBytes = 32

// slotKeyLabel starts the message whose HMAC is a slot's key seed.
const slotKeyLabel = "pickup fetcher libp2p key "

// SlotKey derives the libp2p key of a fetcher slot from a seed: the
// ed25519 key whose seed is HMAC-SHA256(seed, "pickup fetcher libp2p key "
// + slot). Every fetcher of a deployment shares the seed; the slot it
// leases (package presence) picks its key, so each live fetcher has a
// distinct, stable peer id. A seed shorter than MinSeedBytes is refused.
func SlotKey(seed []byte, slot int) (crypto.PrivKey, error) {
	if len(seed) < MinSeedBytes {
		return nil, fmt.Errorf("bitswap: a libp2p seed of %d bytes: want at least %d", len(seed), MinSeedBytes)
	}
	if slot < 0 {
		return nil, fmt.Errorf("bitswap: negative slot %d", slot)
	}
	mac := hmac.New(sha256.New, seed)
	mac.Write([]byte(slotKeyLabel + strconv.Itoa(slot)))
	key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(mac.Sum(nil)))
	if err != nil {
		return nil, fmt.Errorf("bitswap: slot %d key: %w", slot, err)
	}
	return key, nil
}
