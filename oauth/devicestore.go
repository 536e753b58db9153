package oauth

import (
	"context"
	"errors"
	"time"
)

// DeviceStatus is where a device authorization stands (RFC 8628 3.3 to
// 3.5).
type DeviceStatus string

// The states of a device authorization. A pending one is decided once, by
// one user; an approved one is issued once.
const (
	DevicePending  DeviceStatus = "pending"
	DeviceApproved DeviceStatus = "approved"
	DeviceDenied   DeviceStatus = "denied"
	DeviceIssued   DeviceStatus = "issued"
)

// DeviceSlowDownStep is how much a device code's polling interval grows
// each time the client polls too fast (RFC 8628 3.5: "MUST be increased by
// 5 seconds for this and all subsequent requests").
const DeviceSlowDownStep = 5 * time.Second

// UserCodeHash is what the store keeps of a user code: HMAC-SHA256 of the
// normalized code under a key derived from the server key. A plain hash
// would not do: there are only 20^8 user codes, few enough to hash them
// all.
type UserCodeHash [32]byte

// DeviceAuthorization is a stored device authorization request (RFC 8628
// 3.1, 3.2), kept by the hashes of its two codes.
type DeviceAuthorization struct {
	DeviceCodeHash TokenHash
	UserCodeHash   UserCodeHash
	ClientID       string
	// ClientGeneration is that of the stored client the request came
	// from, empty for a client of the config; the family inherits it.
	ClientGeneration string
	Scopes           []string
	Status           DeviceStatus
	// UserID is the user who approved or denied; empty while pending.
	UserID string
	// Interval is the least time between two polls; each slow_down adds
	// DeviceSlowDownStep.
	Interval time.Duration
	// LastPolledAt is the time of the last poll; zero before the first.
	LastPolledAt time.Time
	// DecidedAt is when the user approved or denied; zero while pending.
	// An approval's tokens take it as the time the user authorized.
	DecidedAt time.Time
	// FamilyID names the refresh family the tokens will belong to.
	FamilyID  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// DevicePollOutcome is the answer to one poll of the token endpoint with a
// device code (RFC 8628 3.5).
type DevicePollOutcome int

// The outcomes of a poll.
const (
	// DevicePollPending: the user has not decided yet
	// (authorization_pending).
	DevicePollPending DevicePollOutcome = iota + 1
	// DevicePollSlowDown: still pending, and polled sooner than the
	// interval after the last poll; the interval has grown (slow_down).
	DevicePollSlowDown
	// DevicePollDenied: the user denied (access_denied).
	DevicePollDenied
	// DevicePollExpired: the device code has expired (expired_token).
	DevicePollExpired
	// DevicePollIssued: approved, and this poll stored the token pair.
	DevicePollIssued
	// DevicePollUsed: an earlier poll was given the tokens
	// (invalid_grant).
	DevicePollUsed
)

// DevicePoll is what a poll found and did.
type DevicePoll struct {
	Outcome DevicePollOutcome
	// Interval is the polling interval after this poll.
	Interval time.Duration
	// UserID and Scopes are those of the authorization.
	UserID string
	Scopes []string
}

// ErrDeviceCodeTaken is returned by DeviceStore.SaveDeviceAuthorization
// when a device authorization with the same device code or user code is
// stored already; the caller draws new codes.
var ErrDeviceCodeTaken = errors.New("device code or user code already stored")

// DeviceStore keeps device authorizations. Deciding and polling are each
// one transaction on the authorization's row, so that of racing calls,
// across every instance sharing the store, one decides and one is issued
// the tokens.
type DeviceStore interface {
	// SaveDeviceAuthorization stores a new pending authorization, or
	// returns ErrDeviceCodeTaken.
	SaveDeviceAuthorization(ctx context.Context, d DeviceAuthorization) error
	// PendingDeviceAuthorization returns the pending authorization with
	// user code hash h that has not expired at now, or ErrNotFound.
	PendingDeviceAuthorization(ctx context.Context, h UserCodeHash, now time.Time) (DeviceAuthorization, error)
	// DecideDeviceAuthorization records the decision of userID (approve
	// or deny) on the pending, unexpired authorization with user code
	// hash h, and returns it as decided. One that is decided already or
	// expired is ErrNotFound.
	DecideDeviceAuthorization(ctx context.Context, h UserCodeHash, userID string, approve bool, now time.Time) (DeviceAuthorization, error)
	// PollDeviceAuthorization answers one poll for the device code with
	// hash h, in one transaction that locks its row: an unknown code is
	// ErrNotFound; otherwise check runs, and its error is returned with
	// nothing written. Then, in this order: expired (DevicePollExpired);
	// pending and polled sooner than the interval after the last poll (the
	// interval grows by DeviceSlowDownStep); pending; denied; approved,
	// which marks it issued and stores pair as the first of a new family,
	// only while the client of the authorization's generation exists
	// (else ErrNotFound); issued. Every poll of a pending authorization
	// becomes its last poll.
	PollDeviceAuthorization(ctx context.Context, h TokenHash, now time.Time, check func(DeviceAuthorization) error, pair IssuedPair) (DevicePoll, error)
}
