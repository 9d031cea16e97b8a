package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRedisURLs checks how the Sentinel and Cluster forms reach go-redis's
// own parsers.
func TestRedisURLs(t *testing.T) {
	s, err := sentinelOptions("redis+sentinel://sentuser:sentpass@s1,s2:26380,[::1]:26381/mymaster/2?password=masterpass&dial_timeout=3s")
	require.NoError(t, err)
	assert.Equal(t, []string{"s1:26379", "s2:26380", "[::1]:26381"}, s.SentinelAddrs)
	assert.Equal(t, "mymaster", s.MasterName)
	assert.Equal(t, 2, s.DB)
	assert.Equal(t, "sentuser", s.SentinelUsername)
	assert.Equal(t, "sentpass", s.SentinelPassword)
	assert.Equal(t, "masterpass", s.Password)
	assert.Equal(t, "3s", s.DialTimeout.String())
	assert.Nil(t, s.TLSConfig)

	s, err = sentinelOptions("rediss+sentinel://s1:26379?master_name=m&db=1")
	require.NoError(t, err)
	assert.Equal(t, "m", s.MasterName)
	assert.Equal(t, 1, s.DB)
	assert.NotNil(t, s.TLSConfig)

	c, err := clusterOptions("redis+cluster://u:p@n1:7001,n2?addr=n3:7003&read_only=true")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"n1:7001", "n2:6379", "n3:7003"}, c.Addrs)
	assert.Equal(t, "u", c.Username)
	assert.Equal(t, "p", c.Password)
	assert.True(t, c.ReadOnly)

	o, err := redisOptions("rediss://:pw@cache:6380/4")
	require.NoError(t, err)
	assert.Equal(t, "cache:6380", o.Addr)
	assert.Equal(t, 4, o.DB)
	assert.Equal(t, "pw", o.Password)
	assert.NotNil(t, o.TLSConfig)

	o, err = redisOptions("redis+unix:///run/redis.sock?db=3")
	require.NoError(t, err)
	assert.Equal(t, "unix", o.Network)
	assert.Equal(t, "/run/redis.sock", o.Addr)
	assert.Equal(t, 3, o.DB)
}

func TestMySQLURL(t *testing.T) {
	cfg, err := mysqlConfig("mysql://app:p%40ss@db.internal/orders?timeout=5s&tls=skip-verify")
	require.NoError(t, err)
	assert.Equal(t, "tcp", cfg.Net)
	assert.Equal(t, "db.internal:3306", cfg.Addr)
	assert.Equal(t, "orders", cfg.DBName)
	assert.Equal(t, "app", cfg.User)
	assert.Equal(t, "p@ss", cfg.Passwd)
	assert.Equal(t, "5s", cfg.Timeout.String())
	assert.Equal(t, "skip-verify", cfg.TLSConfig)
}

func TestParseInterspersed(t *testing.T) {
	o, fs := getCmd.flagSet()
	args, err := parseInterspersed(fs, []string{"a", "-json", "b", "-namespace", "ns", "--", "-c", "-json"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "-c", "-json"}, args)
	assert.True(t, o.json)
	assert.Equal(t, "ns", o.store.namespace)
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://u:secret@h:6379/0":                  "redis://u:xxxxx@h:6379/0",
		"redis://:secret@h":                          "redis://:xxxxx@h",
		"redis+cluster://u:p@ss@[::1],h2:7002?x=@y":  "redis+cluster://u:xxxxx@[::1],h2:7002?x=@y",
		"redis://u@h:6379":                           "redis://u@h:6379",
		"postgres://h/db?sslmode=disable&password=s": "postgres://h/db?sslmode=disable&password=xxxxx",
		"redis+sentinel://s1/m?password=s&db=1":      "redis+sentinel://s1/m?password=xxxxx&db=1",
		"sqlite:/var/lib/a@b.db":                     "sqlite:/var/lib/a@b.db",
	} {
		assert.Equal(t, want, redact(in), in)
	}
}
