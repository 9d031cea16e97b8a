package revotel

import (
	"errors"

	"github.com/revguard/revguard"
)

// The values of error.type on decisions: why an event may not be
// acknowledged. They follow revguard.Disposition's reading of errors, with
// a failed handler told apart from a store that could not be reached.
const (
	errInFlight  = iota // ErrInFlight: another delivery holds the claim
	errGap              // ErrGap: earlier revisions are missing
	errLeaseLost        // ErrLeaseLost
	errInvalid          // ErrInvalidKey, ErrInvalidRevision, ErrInvalidEvent
	errHandler          // the handler, or the dead-letter callback, failed
	errStore            // a store call failed
	numErrTypes
)

var errTypeNames = [numErrTypes]string{"in_flight", "gap", "lease_lost", "invalid", "handler", "store"}

// errorType classifies a decision's error: revguard's sentinels first,
// then a revguard.StoreError (a store call that failed), and anything else
// is the handler's (or its dead-letter callback's).
func errorType(err error) int {
	var se *revguard.StoreError
	switch {
	case errors.Is(err, revguard.ErrInFlight):
		return errInFlight
	case errors.Is(err, revguard.ErrGap):
		return errGap
	case errors.Is(err, revguard.ErrLeaseLost):
		return errLeaseLost
	case errors.Is(err, revguard.ErrInvalidKey), errors.Is(err, revguard.ErrInvalidRevision), errors.Is(err, revguard.ErrInvalidEvent):
		return errInvalid
	case errors.As(err, &se):
		return errStore
	}
	return errHandler
}

// storeErrorType classifies a failed store call for the span's store
// events. The guard hands the Store hook a transaction's error as the
// decision gets it: a revguard.StoreError when the store failed, the
// handler's own error otherwise.
func storeErrorType(op string, err error) string {
	var se *revguard.StoreError
	switch {
	case errors.Is(err, revguard.ErrLeaseLost):
		return "lease_lost"
	case op == "transact" && !errors.As(err, &se):
		return "handler"
	}
	return "store"
}
