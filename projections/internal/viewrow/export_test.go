package viewrow

// Hooks for the external tests.
var (
	EncodeState = encodeState
	DecodeState = decodeState
)
