package projections

// Hooks for the external tests.
var (
	EncodeState  = encodeState
	DecodeState  = decodeState
	ApplyDecoded = applyDecoded
)
