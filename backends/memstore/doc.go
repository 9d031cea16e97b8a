// Package memstore is the in-process [revguard.Store]: a sharded map, safe
// for concurrent use. It is the default for a single process and for tests.
// Its state lives as long as the process, so it guards one consumer process
// only, and a restart forgets every applied revision: where the consumer
// restarts and must not apply old events again, or runs as several
// processes, use redisstore or sqlstore.
//
// The package Example shares one store between two consumers. A claim here
// cannot outlive the guard that holds it, so the guard keeps no lease and
// sends each call on its own (see [revguard.InProcess]); a decision is a map
// lookup under one shard's lock.
package memstore
