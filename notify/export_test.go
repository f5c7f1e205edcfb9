package notify

// DialControl is the webhook client's check of each address it dials.
var DialControl = dialControl
