// Package notify tells the outside world that pins were pinned or failed:
// signed webhooks per tenant, and, for deployments that index CARs, a
// message on an SNS topic for every CAR validated into the carpark.
//
// # An outbox in the log
//
// Every notification is a delivery with a stream of its own,
// "delivery-<id>", and its whole life is events:
//
//	DeliveryDue ─▶ DeliveryStarted ─▶ Delivered
//	                    │    ▲
//	                    ▼    │ (RetryAt passed, or the lease ran out)
//	            DeliveryAttempted ─▶ ... ─▶ DeliveryAbandoned (after MaxAttempts)
//
// The id is derived from the cause (the pin's CarValidated or DeadLettered
// event) and the target (the webhook, or the topic), and DeliveryDue is
// appended with that id to a stream that must not exist yet: two notifiers,
// or a replay, that decide on the same cause create one delivery. The
// DeliveryDue carries the whole notification, so every attempt sends the
// same body.
//
// An attempt is claimed before anything is sent: DeliveryStarted, appended
// at the revision the notifier read, with a lease. Of two notifiers racing
// for an attempt, one wins and the other sends nothing. The winner sends,
// then appends the outcome after its claim. Stopped between the two (a
// crash, a deploy), it leaves the claim to run out, and the delivery is
// sent again by whoever takes it next, with the same delivery id: delivery
// is at least once, never lost, and receivers deduplicate on the id
// (header Pickup-Delivery-Id). Failed attempts are retried with
// exponential backoff (Policy); after MaxAttempts the delivery is
// abandoned. A delivery for a webhook removed meanwhile is abandoned at
// its next attempt.
//
// # The notifier's state, and restarts
//
// A notifier keeps in memory the webhooks registry (the fold of the
// "webhooks" stream, package tenant) and the deliveries not yet over. It
// follows the log in order, so a pin's event is matched against the
// webhooks registered before it, the same way by every notifier and every
// replay. Its checkpoint is itself an event (stream "notify-checkpoint",
// every CheckpointEvery while the log moves): the last event processed, or
// just before the oldest delivery still pending, whichever comes first. A
// notifier starting afresh follows the log from there and so rebuilds
// exactly the pending deliveries, and re-decides the causes after it
// (creating nothing twice). What a restart reads again is bounded by how
// long deliveries stay pending (about an hour with the default policy)
// plus CheckpointEvery, not by the size of the log; and the state lives
// wherever the log does, with no store of its own to set up, back up or
// lose. With no checkpoint yet, a notifier starts at the first webhook's
// registration, or at the log's head when there is none: turning SNS
// messages on does not publish the carpark's past.
//
// # Signatures
//
// A webhook's POST carries the JSON Notification, and the headers
// Pickup-Delivery-Id, Pickup-Event, Pickup-Timestamp and Pickup-Signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>". Verify
// checks one as a receiver should. Each webhook's secret is derived from a
// key kept outside the log (PICKUP_WEBHOOK_KEY) and the webhook's id: the
// log holds neither key nor secret, only the key's fingerprint, so that
// reading the log does not let anyone forge a delivery, and a notifier
// given the wrong key fails its attempts instead of signing wrongly.
package notify
