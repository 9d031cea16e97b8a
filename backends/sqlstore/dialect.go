package sqlstore

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/revguard/revguard"
)

// Dialect names the SQL database a [Store] talks to. The store imports no
// driver: the program opens the *sql.DB with the driver of its choice and
// tells [New] which dialect it speaks.
type Dialect uint8

const (
	// Postgres is PostgreSQL 12 or newer, tested with the pgx v5 stdlib
	// driver ("pgx") on PostgreSQL 15.
	Postgres Dialect = iota + 1
	// SQLite is SQLite 3.35 or newer, tested with modernc.org/sqlite
	// ("sqlite", no cgo).
	SQLite
	// MySQL is MariaDB 10.5 or newer, tested with
	// github.com/go-sql-driver/mysql on MariaDB 10.11. MySQL 8 is untested.
	MySQL
)

// String returns the dialect's Go name ("Postgres"), for errors and logs.
func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "Postgres"
	case SQLite:
		return "SQLite"
	case MySQL:
		return "MySQL"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// identPart is one part of a table name. Quoting such a name can never
// break out of the quotes, and the length fits every dialect's limit.
var identPart = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// quoteTable checks name, an identifier optionally qualified by a schema
// ("schema.table"), and returns it quoted for d.
func (d Dialect) quoteTable(name string) (string, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return "", fmt.Errorf("sqlstore: table name %q: want a name or schema.name", name)
	}
	q := `"`
	if d == MySQL {
		q = "`"
	}
	for i, p := range parts {
		if !identPart.MatchString(p) {
			return "", fmt.Errorf("sqlstore: table name %q: each part must be a letter or underscore followed by at most 62 letters, digits or underscores", name)
		}
		parts[i] = q + p + q
	}
	return strings.Join(parts, "."), nil
}

// revArg is a revision as d keeps it. PostgreSQL keeps NUMERIC(20,0),
// which pgx fills from a decimal string; MariaDB keeps BIGINT UNSIGNED,
// which the driver sends as an unsigned integer (a string would be compared
// as a double); SQLite, whose integers are signed, keeps 20-digit
// zero-padded text, which orders as the numbers do.
func (d Dialect) revArg(r revguard.Revision) any {
	switch d {
	case SQLite:
		return fmt.Sprintf("%020d", uint64(r))
	case MySQL:
		return uint64(r)
	}
	return strconv.FormatUint(uint64(r), 10)
}

// leaseArg is a lease as the claim_until expression of d reads it; nil
// makes that expression NULL, which means no claim.
func (d Dialect) leaseArg(lease time.Duration, claim bool) any {
	if !claim {
		return nil
	}
	if d == SQLite {
		// strftime's modifier, rounded up to the millisecond the column keeps.
		ms := (lease + time.Millisecond - 1) / time.Millisecond
		return fmt.Sprintf("+%d.%03d seconds", ms/1000, ms%1000)
	}
	return lease.Microseconds()
}

// parseRev reads a revision column scanned as text: every dialect's
// driver renders it in decimal, SQLite's with leading zeros.
func parseRev(s string) (revguard.Revision, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("unreadable revision %q in the table: %w", s, err)
	}
	return revguard.Revision(n), nil
}

// parseRevBytes is parseRev for a column scanned as sql.RawBytes, without
// copying it into a string first.
func parseRevBytes(b []byte) (revguard.Revision, error) {
	var n uint64
	for _, c := range b {
		d := uint64(c - '0')
		if d > 9 || n > (math.MaxUint64-d)/10 {
			return 0, fmt.Errorf("unreadable revision %q in the table", b)
		}
		n = n*10 + d
	}
	if len(b) == 0 {
		return 0, errors.New("unreadable empty revision in the table")
	}
	return revguard.Revision(n), nil
}

// errConflict reports that the database refused a statement for a race it
// lost (serialization failure, deadlock, busy database, a row that
// appeared after it looked): the statement changed nothing and runs again.
var errConflict = errors.New("lost a race with a concurrent transaction")

// retryable reports whether err is a failure after which running the whole
// transaction again is safe and likely to succeed.
func (d Dialect) retryable(err error) bool {
	if errors.Is(err, errConflict) {
		return true
	}
	switch d {
	case Postgres:
		var e interface{ SQLState() string }
		if errors.As(err, &e) {
			// serialization_failure, deadlock_detected
			return e.SQLState() == "40001" || e.SQLState() == "40P01"
		}
	case SQLite:
		var e interface{ Code() int }
		if errors.As(err, &e) {
			// SQLITE_BUSY and SQLITE_LOCKED with their extended codes.
			c := e.Code() & 0xff
			return c == 5 || c == 6
		}
	case MySQL:
		num, state, ok := mysqlError(err)
		// 1213 deadlock, 1205 lock wait timeout is deliberately not here: it
		// means a transaction held a lock for innodb_lock_wait_timeout.
		return ok && (num == 1213 || state == "40001")
	}
	return false
}

// duplicateKey reports whether err is MySQL's refusal of an INSERT that met
// an existing row.
func duplicateKey(err error) bool {
	num, _, ok := mysqlError(err)
	return ok && num == 1062
}

// mysqlError reads go-sql-driver/mysql's *MySQLError, which has no methods
// to test through an interface, without importing the driver.
func mysqlError(err error) (num uint16, state string, ok bool) {
	for err != nil {
		v := reflect.ValueOf(err)
		if v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
			e := v.Elem()
			n, s := e.FieldByName("Number"), e.FieldByName("SQLState")
			if e.Type().Name() == "MySQLError" && n.Kind() == reflect.Uint16 {
				if s.Kind() == reflect.Array && s.Type().Elem().Kind() == reflect.Uint8 {
					b := make([]byte, s.Len())
					for i := range b {
						b[i] = byte(s.Index(i).Uint()) //nolint:gosec // G115: the element's Kind is uint8, checked above
					}
					state = string(b)
				}
				return uint16(n.Uint()), state, true //nolint:gosec // G115: n's Kind is uint16, checked above
			}
		}
		err = errors.Unwrap(err)
	}
	return 0, "", false
}
