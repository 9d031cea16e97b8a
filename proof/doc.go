// Package proof holds revguard's proof under faults: tests, in a module of
// their own, that check every store against a model and every mode against
// an at-least-once transport that misbehaves.
//
//   - Linearizability: concurrent histories of Claim, Commit, advance,
//     Renew, Release and Peek are recorded against each store and checked
//     with porcupine against a per-entity model written from the contract on
//     revguard.Store (not from any store's code).
//   - Delivery storm: every event delivered one to five times, shuffled, to
//     several guards sharing one store, with failing handlers, consumers that
//     die mid-handler, and a handler slower than its lease; again with each
//     guard called from 8 goroutines at once (coalesced store calls), and
//     with HandleBatch running 4 handlers at a time.
//   - Network faults: the storm again through toxiproxy, run in the test
//     process, with latency, swallowed replies, reset connections and a
//     restarted server (Redis, PostgreSQL, MariaDB).
//   - Failover: the storm on a Redis Sentinel group and a Redis Cluster
//     with replicas, of the test's own, while a replica is promoted
//     (SENTINEL FAILOVER, CLUSTER FAILOVER, and the master killed with
//     SIGKILL), without and with redisstore.WithWait: what a failover
//     loses, in figures.
//   - Soak: in the long proof, a million deliveries or more over 100,000
//     entities on Redis and PostgreSQL with failing handlers: nothing lost
//     or applied twice, and the Go heap, the store's memory and the
//     goroutine count grow no more than the entities' own state.
//   - Fuzzing: sequences of store calls decoded from bytes, checked against
//     the same model.
//
// Run it with scripts/proof.sh from the repository root, or
//
//	cd proof && go test -run Proof -v -count=1 ./...            # short
//	cd proof && go test -run Proof -v -count=1 ./... -args -long # release
//
// The package has no API; this file only documents it.
package proof
