package redisstore

import (
	"testing"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/backendtest"
)

// TestConformance runs the suite every revguard store passes on miniredis,
// on a real redis-server, through Redis Sentinel and on a real Redis Cluster
// whose masters have replicas.
func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c := b.client(t)
			s := testStore(t, c)
			backendtest.Run(t, func(t *testing.T) revguard.Store { return s }, backendtest.Features{})
		})
	}
}
