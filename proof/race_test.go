//go:build race

package proof

// raceEnabled says the tests run under the race detector, which slows
// every store by several times (the pure-Go SQLite most): leases grow to
// match, since a lease must outlast the store's slowest call.
const raceEnabled = true
