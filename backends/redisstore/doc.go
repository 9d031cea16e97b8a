// Package redisstore is a [revguard.Store] on Redis, through go-redis v9: a
// single server, a Sentinel failover client or Redis Cluster. Every
// operation is one Lua script, so each decision is atomic on the server
// however many consumers share it. It needs Redis 5.0 or newer (scripts
// that read TIME and then write); it is tested with Redis 7.0 and miniredis.
//
// The package Example runs a guard on miniredis. A program passes its own
// client (redis.NewClient, NewFailoverClient or NewClusterClient) to [New]
// and calls [Store.Preflight] once at start: it reports server settings
// that could lose revisions, such as an eviction policy that may evict
// their keys.
//
// # Key layout
//
// Each entity is one hash, under the key
//
//	<prefix>{<namespace>:<key>}
//
// for example revguard:{orders:product:42}. The prefix is "revguard:"
// unless [WithPrefix] says otherwise. In the namespace and the key, '%', '{',
// '}' and control characters, and in the namespace also ':', are written as
// %XX (hex), so distinct (namespace, key) pairs never share a Redis key,
// whatever bytes they hold. The braces make the whole identity the key's
// hash tag: a "{...}" inside a user key cannot move the entity to another
// slot or gather unrelated entities in one. Keys stay readable, so an
// operator can find an entity with redis-cli; the cost is that a long key
// makes an equally long Redis key.
//
// The hash's fields, all plain strings:
//
//	rev    the applied revision, in decimal (absent: nothing applied)
//	last   the token that recorded rev, so that a retried commit or advance
//	       can tell it already took effect
//	prior  "<token>:<revision>" of the three recordings an advance replaced,
//	       newest first, so that an advance go-redis sends again after newer
//	       ones overtook it still answers as it first did
//	claim  the last claim taken, "<revision> <token> <until>": the claimed
//	       revision in decimal, the token holding the claim, and when its
//	       lease ends, Unix milliseconds on the server's clock
//
// for example
//
//	rev    41
//	last   5f0c3e19a2b74d6e8f1a0b2c3d4e5f60
//	claim  42 9a8b7c6d5e4f30211203f4e5d6c7b8a9 1767225600000
//
// A claim whose revision is rev has been committed: it has ended, and stays
// as a record of the last claim. The commit ends it by setting rev, in the
// one write that records the revision, rather than spend a second command
// per entity deleting it; nothing else makes rev equal a claim's revision,
// since an advance and [Store.Set] delete the claim. Above, the claim on 42
// is live until its lease ends; once committed, rev reads 42 and last the
// claim's token.
//
// A key that only holds a claim expires with its lease, so an abandoned
// claim leaves nothing behind. A key with a revision lives for ever, or for
// [WithTTL] after the revision was recorded.
//
// # Inspecting
//
// The store is a [revguard.Inspector]. [Store.Inspect] reads an entity and
// the lease left of its claim on the clock of the server that holds it.
// [Store.Scan] runs SCAN with MATCH over the namespace's keys, 500 keys a
// call, on every master of a cluster (every live shard of a Ring), decodes
// each name back to its key, and reads each page's hashes in one pipeline of
// HMGETs.
//
// # Exactness
//
// Revisions cross the wire and are stored as canonical decimal strings.
// Lua numbers are doubles (2^53 and 2^53+1 are the same number there), so
// the scripts never convert a long revision whole: two canonical decimals of
// different lengths are ordered by length, ones of at most 15 digits convert
// exactly, and longer ones are compared and added as two numbers, their last
// ten digits and the digits above them. The decisions (stale, duplicate,
// sequential applied+1, WithMaxStep) are therefore exact over the whole
// uint64 range. Leases are timed by the server's clock (TIME inside the
// script), never the client's; on Redis Cluster each entity is timed by the
// clock of the master that holds it, so a failover to a master whose clock
// differs shortens or stretches live leases by the difference.
//
// # Retries
//
// go-redis sends a command again when its reply does not arrive in time
// (Options.MaxRetries, 3 by default), so a script may run twice for one
// call. Every script answers the second run as it did the first: a claim by
// the same token is granted again, a commit or advance whose token recorded
// the applied revision reports success.
//
// # Batches
//
// [Store.ClaimBatch] and [Store.CommitBatch] send one script call per hash
// slot (on a single server, one call for up to 256 entities) and pipeline the
// calls, which the cluster client sends to all nodes in parallel: a batch
// costs one round trip per node, not one per entity. Claims whose lease, mode
// or ordering differ go in separate calls, since a call takes those once for
// all its entities; a guard's batch shares them. Against a *redis.Ring, or a
// client type this package does not know, each entity is its own call, still
// pipelined.
//
// # Persistence and failover
//
// The store is as durable as Redis. With AOF and appendfsync everysec (the
// usual setting) a crash loses up to a second of writes: commits from that
// second are forgotten and their events apply again when redelivered. With
// RDB snapshots only, everything since the last snapshot is lost; without
// persistence, a restart forgets every revision. Use appendonly yes, and
// appendfsync always where a second of duplicates is not acceptable.
//
// Replication is asynchronous: after a failover (Sentinel or Cluster) the
// new master may lack writes the old one acknowledged, the same loss as a
// crash, and the events of those commits apply again when redelivered.
// [WithWait](n, timeout) narrows that: every write that records a revision
// sends WAIT on its own connection, in the same round trip, and fails with
// [ErrNotReplicated] unless n replicas have it in time, so that the consumer
// acknowledges only events whose revision a replica holds; a drop
// (Duplicate, Stale) is confirmed the same way. It does not close the
// window: the replica Sentinel or Cluster promotes may not be one that
// acknowledged, and WAIT says the replicas received the write, not that it
// reached their disks ([WithWaitAOF], on Redis 7.2 and newer, does). A
// maxmemory-policy that can evict the store's keys loses revisions
// silently; [Store.Preflight] reports it.
//
// # Deadlines
//
// Every call returns when its context ends, with an error wrapping
// context.DeadlineExceeded or context.Canceled, also when the server has
// stopped answering, whatever the client's ContextTimeoutEnabled (see [New]
// for what that costs and when it is free).
package redisstore
