// Package backendtest is the conformance suite every [revguard.Store] passes.
// A backend's test hands [Run] a function that returns its store:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) revguard.Store { return memstore.New() }, backendtest.Features{})
//	}
//
// Besides the library it imports the standard library only (testing, not
// testify), so that shipping it adds no dependency.
package backendtest

import (
	"testing"

	"github.com/revguard/revguard"
)

// Features declares what a store offers beyond the Store interface. The zero
// value claims nothing optional.
type Features struct {
	// Transactions means the store implements revguard.Transactor, so Run
	// also checks guards in the Transactional mode.
	Transactions bool
}

// Run checks that the stores newStore returns keep the contract written on
// [revguard.Store], calling them both directly and through guards, and, for
// stores that implement [revguard.Inspector] or [revguard.Payloads], the
// contract written there.
//
// Every subtest calls newStore once and may get a store shared with other
// subtests running in parallel (a store backed by a server usually is): each
// works in a namespace of its own, named after the subtest with a random
// suffix, so data left by earlier runs does not matter either. Leases are
// real time, from 150ms up; the whole suite takes a few seconds. Run returns
// once every subtest has finished, so the caller may close what the stores
// use as soon as it returns.
func Run(t *testing.T, newStore func(t *testing.T) revguard.Store, f Features) {
	t.Helper()
	if newStore == nil {
		t.Fatal("backendtest.Run: nil newStore")
	}
	// Groups are not parallel, so that Run blocks until their parallel
	// leaves are done; the leaves of one group overlap each other.
	group := func(name string, leaves ...leaf) {
		t.Run(name, func(t *testing.T) {
			for _, l := range leaves {
				t.Run(l.name, func(t *testing.T) {
					t.Parallel()
					l.run(t, newStore)
				})
			}
		})
	}
	group("Decisions",
		leaf{"Latest", testLatest},
		leaf{"Sequential", testSequential},
		leaf{"MaxStep", testMaxStep},
		leaf{"Advance", testAdvance},
	)
	group("Claims",
		leaf{"Lifecycle", testLifecycle},
		leaf{"WrongToken", testWrongToken},
		leaf{"Expiry", testExpiry},
		leaf{"Renew", testRenew},
	)
	group("Retry",
		leaf{"Claim", testRetryClaim},
		leaf{"Advance", testRetryAdvance},
		leaf{"ReleaseRenew", testRetryReleaseRenew},
		leaf{"Batch", testRetryBatch},
		leaf{"ThroughGuard", testRetryThroughGuard},
	)
	group("Uint64",
		leaf{"Pairs", testUint64Pairs},
		leaf{"Bounds", testUint64Bounds},
		leaf{"SetPeek", testUint64SetPeek},
		leaf{"Random", testUint64Random},
	)
	group("Admin",
		leaf{"Set", testSet},
		leaf{"SetDropsClaim", testSetDropsClaim},
		leaf{"Forget", testForget},
		leaf{"Unknown", testUnknown},
	)
	group("Keys",
		leaf{"Distinct", testKeys},
		leaf{"Namespaces", testNamespaces},
	)
	group("Batch",
		leaf{"LikeSingles", testBatchLikeSingles},
		leaf{"Commit", testBatchCommit},
		leaf{"Advance", testBatchAdvance},
		leaf{"ThroughGuard", testBatchThroughGuard},
	)
	group("Guard",
		leaf{"Decisions", testGuardDecisions},
		leaf{"HandlerError", testHandlerError},
		leaf{"HandlerPanic", testHandlerPanic},
		leaf{"LeaseLost", testLeaseLost},
		leaf{"LongHandler", testLongHandler},
	)
	group("Concurrency",
		leaf{"SameEvent", testSameEvent},
		leaf{"Latest", testConcurrentLatest},
		leaf{"Sequential", testConcurrentSequential},
	)
	if f.Transactions {
		group("Transactional",
			leaf{"Applies", testTxApplies},
			leaf{"HandlerError", testTxHandlerError},
			leaf{"SameEvent", testTxSameEvent},
		)
	}
	group("Inspect",
		leaf{"Unknown", testInspectUnknown},
		leaf{"Claim", testInspectClaim},
		leaf{"Expired", testInspectExpired},
		leaf{"Scan", testScan},
		leaf{"ScanPages", testScanPages},
	)
	group("Payloads",
		leaf{"Lifecycle", testPayloadLifecycle},
		leaf{"Refusals", testPayloadRefusals},
		leaf{"Replaced", testPayloadReplaced},
		leaf{"Admin", testPayloadAdmin},
		leaf{"Bounds", testPayloadBounds},
	)
	group("Differential",
		leaf{"Model", testDifferential},
	)
	group("Cancelled",
		leaf{"Store", testCancelledStore},
		leaf{"Guard", testCancelledGuard},
	)
}

type leaf struct {
	name string
	run  func(t *testing.T, newStore func(*testing.T) revguard.Store)
}
