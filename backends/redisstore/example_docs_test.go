package redisstore_test

import (
	"context"
	"log"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/redisstore"
)

// A store for a deployment: one client type for a single server, a Sentinel
// group or a Cluster, WithWait where there are replicas, and Preflight at
// startup. It needs a server, so it is compiled but not run.
func Example_deployment() {
	ctx := context.Background()
	addrs := strings.Split(os.Getenv("REDIS_ADDRS"), ",")
	masterName := os.Getenv("REDIS_MASTER")
	extract := func(e event) (string, revguard.Revision, error) { return e.Key, e.Rev, nil }

	// snippet:redis-deployment
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:      addrs,      // one server, the Sentinels, or Cluster seed nodes
		MasterName: masterName, // Sentinel only: the master's name
	})
	store := redisstore.New(client,
		redisstore.WithWait(1, time.Second)) // with replicas: a failover cannot undo an acknowledged event
	if err := store.Preflight(ctx); err != nil {
		log.Fatal(err) // an eviction policy that can drop revisions, or too few replicas for WithWait
	}
	g := revguard.New(store, extract)
	// snippet:end
	_ = g
}
