package sqlstore_test

import (
	"testing"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/backendtest"
	"github.com/revguard/revguard/backends/sqlstore"
)

// TestConformance runs the suite on every database, on one table per
// database: the suite keeps its subtests apart by namespace. The servers
// run it again with SERIALIZABLE as the sessions' default isolation, where
// the store must retry what the database aborts.
func TestConformance(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		db := d.open(t, "")
		s := newStore(t, db, d.dialect)
		backendtest.Run(t, func(*testing.T) revguard.Store { return s }, backendtest.Features{Transactions: true})
	})
}

func TestConformanceSerializable(t *testing.T) {
	// tx_isolation is MariaDB's name for the setting, and the only one 10.11
	// knows; MySQL 8 renamed it transaction_isolation. The MySQL dialect is
	// tested on MariaDB only.
	params := map[sqlstore.Dialect]string{
		sqlstore.Postgres: "default_transaction_isolation=serializable",
		sqlstore.MySQL:    "tx_isolation=%27SERIALIZABLE%27",
	}
	forEachDatabase(t, func(t *testing.T, d database) {
		param, ok := params[d.dialect]
		if !ok {
			t.Skipf("%s transactions are serializable already", d.name)
		}
		db := d.open(t, param)
		if got := isolation(t, db, d.dialect); got != "serializable" {
			t.Fatalf("session isolation is %q; want serializable", got)
		}
		s := newStore(t, db, d.dialect)
		backendtest.Run(t, func(*testing.T) revguard.Store { return s }, backendtest.Features{Transactions: true})
	})
}
